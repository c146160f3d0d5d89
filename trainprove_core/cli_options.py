"""What every command of the `trainprove` line shares, in a module of its own so that plugins' commands and
`trainprove store` use it without importing the commands: the root group `cli` (a `TrainproveError` is
one line and exit code 2) and the options several commands take (the cache, the progress bars).

    from trainprove_core.cli_options import progress_option, store_option
"""

from __future__ import annotations

from pathlib import Path

import click

from . import __version__, secrets
from .errors import Terminated, TrainproveError

WRITE_KEPT = (
    "Everything finished before is kept (the store renames an entry into place only once it is "
    "complete); make room or choose another folder, and run the same command again to resume."
)


class TrainproveGroup(click.Group):
    """A click group that turns `TrainproveError` into a clean message and exit code 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except TrainproveError as exc:
            click.secho(f"error: {secrets.redact(str(exc))}", fg="red", err=True)
            ctx.exit(2)
        except OSError as exc:  # a write no step turned into its own message: a full disk, say
            from .store import cannot_write

            error = cannot_write(exc.filename or "a file", exc, WRITE_KEPT)
            if error is None:
                raise
            click.secho(f"error: {secrets.redact(str(error))}", fg="red", err=True)
            ctx.exit(2)
        except KeyboardInterrupt as exc:
            stopped = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            click.secho(
                f"\n{stopped}: every finished image chunk, model and answer chunk is kept in the store; "
                "run the same command again to resume where it stopped.",
                fg="yellow",
                err=True,
            )
            ctx.exit(143 if isinstance(exc, Terminated) else 130)


@click.group(cls=TrainproveGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trainprove")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Audit whether an image classifier was trained on images made by your text-to-image model.

    trainprove implements TrainProVe (Xie et al., CVPR 2025): it generates a shadow set and a fresh
    validation set with your generator, trains a shadow classifier, asks each suspect for labels on the
    validation set, and runs a one-sided hypothesis test. Describe an audit in a TOML file and run
    `trainprove audit FILE`.
    """
    ctx.ensure_object(dict)


# Options several commands share (plugins' commands too): the cache and the progress bars.
store_option = click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache of image sets, models and answers [default: $TRAINPROVE_STORE or ~/.cache/trainprove].",
)
progress_option = click.option(
    "--progress/--no-progress", default=True, help="Show progress bars on long steps."
)
