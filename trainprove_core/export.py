"""Image sets as files: the images an audit uses (or any generator and prompt makes), as a folder anyone can
load and look at.

    DIR/
      manifest.json        the set: generator, identity, store key; per image its file, class, index within
                           the class, prompt, seed, and SHA-256 of the PNG file and of its RGB pixels
      <class>/00000.png    one folder per class (the task's class names), image j of the class as j

That is the ImageFolder layout, read as it is by `torchvision.datasets.ImageFolder(DIR)` and
`datasets.load_dataset("imagefolder", data_dir=DIR)`. Both number classes by their folder names in
sorted order; `manifest.json` keeps the task's order (`classes`) and each image's `class_index` in it.

The images come from the store through `Workspace.image_set`, made there first if missing, and are
written as lossless PNG: the pixels are the audit's own, byte for byte (`pixels_sha256`). An image's seed
depends on (set seed, prompt, index) only (`audit.image_requests`), so `trainprove sample` with an audit
set's generator, prompt, seed and size makes that set's images and finds them in the same store entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .config import SET_OPTIONS, TABLES, ImageSetConfig, TableSpec, load_table
from .engine import Workspace, image_requests
from .errors import ConfigError, InputError
from .plugins import PluginSet
from .records import ImageSet
from .store import Store, cannot_write
from .task import Task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMAT = "trainprove-image-set/1"
MANIFEST = "manifest.json"
SAMPLE_SOURCE = "trainprove sample"
SAMPLE_SET = TableSpec("sample", SET_OPTIONS)
"""What `trainprove sample` validates its --prompt, --per-class and --seed against: an audit set's keys."""


def export_image_set(
    image_set: ImageSet, task: Task, cfg: ImageSetConfig, out_dir: Path, generator: str
) -> dict[str, Any]:
    """Write `image_set` (made from `cfg` for `task` by the generator plugin named `generator`) to `out_dir`
    in the ImageFolder layout with its manifest; returns the manifest. `out_dir` is replaced when it holds
    an earlier export, refused when it holds anything else; a killed export leaves only a hidden partial
    folder beside it."""
    folders = class_folders(task)
    requests = image_requests(task, cfg)
    if len(requests) != len(image_set) or any(
        r.class_index != label for r, label in zip(requests, image_set.labels.tolist(), strict=True)
    ):
        raise InputError(f"the {image_set.role} set does not hold the images its settings describe")
    out_dir = Path(out_dir)
    _check_target(out_dir)
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    try:
        manifest = _write_export(image_set, task, cfg, out_dir, generator, partial, requests, folders)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        error = cannot_write(
            partial if exc.filename is None else exc.filename,
            exc,
            f"The images are kept in the store (key {image_set.key}) and {out_dir} is as it was; free "
            "space or choose another folder, and run the same command again (nothing is made again).",
        )
        if error is None:
            raise
        raise error from None
    return manifest


def _write_export(
    image_set: ImageSet,
    task: Task,
    cfg: ImageSetConfig,
    out_dir: Path,
    generator: str,
    partial: Path,
    requests: list,
    folders: list[str],
) -> dict[str, Any]:
    from PIL import Image

    shutil.rmtree(partial, ignore_errors=True)
    for folder in folders:
        (partial / folder).mkdir(parents=True)
    width = max(5, len(str(cfg.per_class - 1)))
    records = []
    for position, request in enumerate(requests):
        index = position - request.class_index * cfg.per_class
        name = f"{folders[request.class_index]}/{index:0{width}d}.png"
        pixels = image_set.images[position]
        Image.fromarray(pixels).save(partial / name, format="PNG")
        records.append(
            {
                "file": name,
                "class": request.class_name,
                "class_index": request.class_index,
                "index": index,
                "prompt": request.prompt,
                "seed": request.seed,
                "sha256": hashlib.sha256((partial / name).read_bytes()).hexdigest(),
                "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest(),
            }
        )
    manifest = {
        "format": FORMAT,
        "trainprove_version": __version__,
        "role": image_set.role,
        "generator": generator,
        "key": image_set.key,
        "identity": image_set.identity,
        "classes": list(task.classes),
        "image_size": task.image_size,
        "prompt": cfg.prompt,
        "per_class": cfg.per_class,
        "seed": cfg.seed,
        "images": records,
    }
    (partial / MANIFEST).write_text(manifest_text(manifest), encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(out_dir)
    return manifest


def manifest_text(manifest: Mapping[str, Any]) -> str:
    """The manifest as JSON, indented, with one line per image (readable, and diffable line by line)."""
    head = json.dumps({k: v for k, v in manifest.items() if k != "images"}, indent=1)
    images = ",\n".join("  " + json.dumps(r) for r in manifest["images"])
    return head[:-2] + ',\n "images": [\n' + images + "\n ]\n}\n"


def class_folders(task: Task) -> list[str]:
    """The folder of each class: its name, which must be usable as one folder name everywhere (the loaders
    skip hidden folders, and a case-insensitive file system would merge `Cat` and `cat`)."""
    seen: dict[str, str] = {}
    for name in task.classes:
        bad = (
            not name
            or name in (".", "..")
            or name.startswith((".", "__"))
            or any(c in name for c in '/\\:*?"<>|\0')
            or name != name.strip()
        )
        if bad:
            raise InputError(
                f"class name {name!r} cannot be a folder name in an ImageFolder export (no path separators, "
                "reserved characters, leading dot or underscores, or surrounding spaces)"
            )
        if name.casefold() in seen:
            raise InputError(
                f"classes {seen[name.casefold()]!r} and {name!r} differ only in case: their folders would "
                "be one on a case-insensitive file system"
            )
        seen[name.casefold()] = name
    return list(task.classes)


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    try:
        earlier = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8")).get("format", "")
    except (OSError, ValueError, AttributeError):
        earlier = ""
    if not str(earlier).startswith("trainprove-image-set/"):
        raise InputError(
            f"{out_dir}: exists, is not empty and is not an earlier export (no trainprove {MANIFEST}); "
            "choose a new or empty directory"
        )


def parse_settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`KEY=VALUE` options as a table: VALUE is read as a TOML value (`4`, `0.5`, `true`, `[0.5, 1.0]`,
    `"text"`), and as plain text where it is not one (`./my-model`, `org/name`)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE", SAMPLE_SOURCE)
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value
    return out


def sample(
    plugins: PluginSet,
    store: Store,
    generator: str,
    out_dir: Path,
    *,
    classes: tuple[str, ...] | None,
    per_class: int,
    prompt: str,
    seed: int,
    image_size: int | None = None,
    settings: Mapping[str, Any] | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Make `per_class` images of each class with the generator plugin `generator` (its `settings` are
    the keys of its `[generator]` table), prompted with the template `prompt`, as the set of seed `seed`,
    at `image_size` (default: the generator's native size); cache them in `store` and export them to
    `out_dir`. Everything is validated as an audit file's tables are, before the generator is built.
    Returns the manifest."""
    tables = {t.name: t for t in TABLES}
    written = {"use": generator, **dict(settings or {})}
    if "use" in (settings or {}):
        raise ConfigError("--set use=: the generator is the argument", SAMPLE_SOURCE, "generator")
    table = load_table(tables["generator"], written, plugins, source=SAMPLE_SOURCE).plugin
    assert table is not None
    if classes is None:
        classes = plugins.generator(generator).spec.classes
        if classes is None:
            raise ConfigError(
                f"--classes is needed: generator {generator!r} is prompted by class name and declares no "
                "classes of its own",
                SAMPLE_SOURCE,
            )
    set_table = {"prompt": prompt, "per_class": per_class, "seed": seed}
    cfg_core = load_table(SAMPLE_SET, set_table, plugins, source=SAMPLE_SOURCE).core
    cfg = ImageSetConfig(cfg_core["prompt"], cfg_core["per_class"], cfg_core["seed"])

    def task_of(size: int) -> Task:
        core = load_table(
            tables["task"], {"classes": list(classes), "image_size": size}, plugins, source=SAMPLE_SOURCE
        ).core
        try:
            task = Task(tuple(core["classes"]), core["image_size"])
        except ValueError as exc:
            raise ConfigError(str(exc), SAMPLE_SOURCE, "task") from None
        load_table(tables["generator"], written, plugins, source=SAMPLE_SOURCE, task=task)
        class_folders(task)
        return task

    # Everything is checked before the generator is built; without --image-size at a stand-in size, which
    # the generator's native size then replaces.
    task = task_of(4 if image_size is None else image_size)
    built = plugins.generator(generator).spec.factory(table.settings)
    if image_size is None:
        task = task_of(int(built.native_size))
    ws = Workspace.open(task, plugins, store, show_progress)
    image_set = ws.image_set("sample", built, cfg)
    return export_image_set(image_set, task, cfg, out_dir, generator)
