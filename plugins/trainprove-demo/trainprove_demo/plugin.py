"""Entry point: adds `trainprove demo`. Imports nothing heavy until the command runs."""

from __future__ import annotations

from pathlib import Path

import click

from trainprove_core import hookimpl
from trainprove_core.cli_options import progress_option


@hookimpl
def trainprove_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--hard",
        is_flag=True,
        help="Generators trained without house styles: shows how label-only TrainProVe fails when "
        "the candidate sources are too alike.",
    )
    @click.option(
        "--world",
        type=click.Choice(["digits", "fashion"]),
        default="digits",
        show_default=True,
        help="digits: scikit-learn's 8x8 digits (fast). fashion: 16x16 RGB Fashion-MNIST generators with "
        "colour house styles; its real images need Debian's dataset-fashion-mnist (or "
        "TRAINPROVE_FASHION_MNIST=<folder of the four IDX files>).",
    )
    @click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where the reports go [default: runs/demo, runs/demo-hard, runs/demo-fashion, ...].",
    )
    @click.option(
        "--store",
        "store_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Cache directory [default: <out>/store, so a second run is warm].",
    )
    @click.option(
        "--executor",
        default=None,
        help="Executor plugin that trains the pool and runs every audit [default: processes (image sets "
        "and trainings in one worker process per core) on a machine of two or more cores, else local].",
    )
    @progress_option
    @click.pass_context
    def demo(
        ctx: click.Context,
        hard: bool,
        world: str,
        out_dir: Path | None,
        store_dir: Path | None,
        executor: str | None,
        progress: bool,
    ) -> None:
        """Run a complete, real audit offline on the CPU, in minutes.

        Small generative models of handwritten digits (shipped with trainprove-embedded, each trained in
        its own "house style") stand in for four text-to-image models. A pool of timm classifiers is
        trained on each one's images and on real digits; then the pool is audited as a fleet: every
        generator in turn is the defender and audits the whole pool with TrainProVe and the calibrated
        rule. Prints the confusion table and the error rates, and writes one report per defender, the
        fleet's attribution report (which generator each suspect came from) and a summary.
        """
        from .run import run_demo

        out_dir = out_dir or Path("runs") / (
            "demo" + ("" if world == "digits" else f"-{world}") + ("-hard" if hard else "")
        )
        run_demo(
            ctx.obj["plugins"],
            out_dir,
            store_dir or out_dir / "store",
            hard=hard,
            show_progress=progress,
            executor=executor,
            world=world,
        )
