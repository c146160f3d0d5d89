"""A benchmark pool of suspect classifiers trained *unlike* the defender's shadow model.

The demo's suspects are trained by the same timm trainer, with the same recipe family, as the defender's
shadow; a decision rule measured on them is flattered. This pool varies what an honest benchmark must:
the training loop (its own: SGD + Nesterov, one-cycle or step schedules, see bench/pool_models.py),
augmentation, architectures (timm CNNs, a ViT, a custom CNN and an MLP exported to ONNX), data size,
label smoothing and mixup, mixtures of the defender's images with real digits and other generators, the
defender's generator under other sampler settings, under- and over-training. Each condition is applied
with several seeds to each training source: the four demo defenders (guilty suspects) and digits-real
and digits-gan (never defenders: innocent for all four), in both settings (styled: house styles on;
hard: house_style = false). docs/bench-pool.md describes the conditions and the measured cost.
`--world fashion` builds the same pool in the fashion world (docs/fashion.md): defenders fashion-ddpm,
-cfg, -vae and -gan (the fashion demo's), innocent sources fashion-real and fashion-gmm.

    python bench/suspect_pool.py                          # the whole pool into runs/bench-pool
    python bench/suspect_pool.py --setting styled --seeds 1 --conditions baseline,vit
    python bench/suspect_pool.py --quick --out /tmp/pool  # tiny sets and one epoch: a smoke test
    python bench/suspect_pool.py --world fashion          # into runs/bench-pool-fashion

Output: one folder per suspect (its model, `suspect.json`) and `manifest.json` listing every suspect
with its truth (`guilty_for`), the adapter table that audits it, and its measured accuracies. A suspect
whose folder is complete (for the same recipe) is skipped; images and trained models go through the
core's content-addressed Store under `<out>/cache`, so a rebuild after deleting folders is cheap.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pool_models  # noqa: E402
from trainprove_embedded.worlds import FASHION  # noqa: E402

POOL_VERSION = 1
CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IMAGE_SIZE = 16
DEFENDERS = ("digits-ddpm", "digits-cfg", "digits-vae", "digits-gmm")
INNOCENT = ("digits-real", "digits-gan")  # never defenders
SOURCES = DEFENDERS + INNOCENT
REAL = "digits-real"
GAN = "digits-gan"
SETTINGS = ("styled", "hard")

# Prompts of this pool's own (the digit generators ignore prompts, but the image seeds derive from them):
# never the shadow's "a {label}", the validation's "a photo of a {label}", the demo's suspects'
# "an image of a {label}", nor anything starting with "reference".
TRAIN_PROMPT = "a picture of a {label}"
REAL_TEST = {"prompt": "a scan of a {label}", "per_class": 60, "seed": 91_001}
SOURCE_TEST = {"prompt": "a sketch of a {label}", "per_class": 40, "seed": 91_002}
LEARNED_TASK = 0.5  # accuracy_own >= this: the suspect learned its own training data's digits
PER_CLASS = 40  # training images per class unless a condition says otherwise
DEFAULT_SEEDS = 2

# Other sampler settings of a defender's own generator (the `other-sampler` condition), cycled by seed.
SAMPLER_VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "digits-ddpm": ({"steps": 4}, {"steps": 25}, {"steps": 6}, {"steps": 16}),
    "digits-cfg": ({"guidance": 1.0}, {"guidance": 4.0, "steps": 12}, {"steps": 4}, {"guidance": 3.0}),
    "digits-vae": ({"temperature": 1.6}, {"temperature": 0.5}, {"temperature": 2.2}, {"temperature": 0.8}),
}

WORLDS: dict[str, dict[str, Any]] = {
    "digits": {
        "CLASSES": CLASSES,
        "DEFENDERS": DEFENDERS,
        "INNOCENT": INNOCENT,
        "REAL": REAL,
        "GAN": GAN,
        "SAMPLER_VARIANTS": SAMPLER_VARIANTS,
    },
    "fashion": {
        "CLASSES": FASHION.classes,  # the generators' own class names, in label order
        "DEFENDERS": ("fashion-ddpm", "fashion-cfg", "fashion-vae", "fashion-gan"),
        # GAN is "the innocent generator" of the mixtures: here the one fashion model that never defends.
        "INNOCENT": ("fashion-real", "fashion-gmm"),
        "REAL": "fashion-real",
        "GAN": "fashion-gmm",
        "SAMPLER_VARIANTS": {
            "fashion-ddpm": ({"steps": 4}, {"steps": 25}, {"steps": 6}, {"steps": 16}),
            "fashion-cfg": (
                {"guidance": 1.0},
                {"guidance": 4.0, "steps": 12},
                {"steps": 4},
                {"guidance": 3.0},
            ),
            "fashion-vae": (
                {"temperature": 1.6},
                {"temperature": 0.5},
                {"temperature": 2.2},
                {"temperature": 0.8},
            ),
        },
    },
}
"""The pool's sources and task per world; `use_world` makes one of them this module's constants."""
WORLD = "digits"


def use_world(name: str) -> None:
    """Make `name`'s classes and sources the module's (`CLASSES`, `DEFENDERS`, ...): the pool is built from
    those names; digits is the default."""
    global WORLD, SOURCES
    globals().update(WORLDS[name])
    WORLD = name
    pool_models.COLOUR = name != "digits"
    SOURCES = DEFENDERS + INNOCENT


BASE = {"arch": "test_resnet", "epochs": 10, "batch_size": 50, "lr": 0.05, "schedule": "onecycle"}


@dataclass(frozen=True)
class Condition:
    """How a group of suspects is trained. `recipe` overrides pool_models.TRAIN_DEFAULTS; `per_seed`
    lists overrides cycled by seed; `mix` names how the training data is composed."""

    name: str
    differs: str  # what differs from the defender's shadow, for the docs
    recipe: Mapping[str, Any]
    per_class: int = PER_CLASS
    mix: str = "single"  # single | real-50 | real-20 | quarter | other-sampler
    primaries: tuple[str, ...] = SOURCES
    per_seed: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


CONDITIONS: tuple[Condition, ...] = (
    Condition("baseline", "training loop only: SGD+Nesterov, one-cycle, integer shifts", BASE),
    Condition(
        "strong-aug",
        "heavy augmentation: rotation 15 deg, scale 0.85-1.15, shear, noise, cutout",
        {
            **BASE,
            "epochs": 14,
            "aug": {
                "rotate": 15,
                "scale": [0.85, 1.15],
                "shear": 0.15,
                "shift": 2,
                "noise": 0.08,
                "cutout": 6,
            },
        },
    ),
    Condition(
        "efficientnet-step",
        "architecture test_efficientnet, step schedule, batch 25",
        {**BASE, "arch": "test_efficientnet", "lr": 0.08, "schedule": "step", "batch_size": 25, "epochs": 8},
    ),
    Condition(
        "vit-onnx",
        "a ViT (timm VisionTransformer, 4x4 patches, 4 blocks) trained with AdamW, exported to ONNX",
        {
            **BASE,
            "arch": "tiny-vit",
            "optimizer": "adamw",
            "lr": 3e-3,
            "weight_decay": 0.05,
            "epochs": 24,
            "batch_size": 32,
            "aug": {"shift": 1},
        },
    ),
    Condition(
        "few-images",
        "15 images per class, 30 epochs, batch 30",
        {**BASE, "epochs": 30, "batch_size": 30},
        per_class=15,
    ),
    Condition(
        "mixup",
        "mixup (alpha 0.4), architecture test_byobnet",
        {**BASE, "arch": "test_byobnet", "mixup": 0.4, "epochs": 12},
    ),
    Condition("label-smoothing", "label smoothing 0.15", {**BASE, "label_smoothing": 0.15}),
    Condition(
        "mix-real-50",
        "50% the source's images, 50% real digits (digits-gan's for the real source)",
        BASE,
        mix="real-50",
    ),
    Condition(
        "mix-real-20",
        "20% the source's images, 80% real digits (digits-gan's for the real source)",
        BASE,
        mix="real-20",
    ),
    Condition(
        "quarter-four",
        "25% each: the defender, real digits, digits-gan and another defender (guilty for two)",
        BASE,
        mix="quarter",
        primaries=DEFENDERS,
    ),
    Condition(
        "other-sampler",
        "the defender's own generator with other steps / guidance / temperature",
        BASE,
        mix="other-sampler",
        primaries=tuple(SAMPLER_VARIANTS),
    ),
    Condition(
        "under-trained",
        "1-2 epochs at a low constant learning rate (may not learn the task)",
        {**BASE, "epochs": 1, "lr": 0.02, "schedule": "constant"},
        per_seed=({"epochs": 1}, {"epochs": 2}),
    ),
    Condition(
        "custom-cnn-onnx",
        "a custom torch CNN (not timm), step schedule, batch 25, shifts + noise, exported to ONNX",
        {
            **BASE,
            "arch": "small-cnn",
            "schedule": "step",
            "epochs": 12,
            "lr": 0.1,
            "batch_size": 25,
            "aug": {"shift": 2, "noise": 0.05},
        },
    ),
    Condition(
        "mlp-onnx",
        "a pixel MLP (no convolutions), exported to ONNX",
        {**BASE, "arch": "pixel-mlp", "epochs": 30, "lr": 0.03, "aug": {"shift": 1}},
    ),
    Condition(
        "overfit",
        "long training on 20 images per class, no augmentation, no weight decay",
        {**BASE, "epochs": 50, "batch_size": 25, "lr": 0.03, "weight_decay": 0.0, "aug": {}},
        per_class=20,
    ),
)
BY_NAME = {c.name: c for c in CONDITIONS}


def short(source: str) -> str:
    return source.removeprefix(f"{WORLD}-")


def generator_table(source: str, setting: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    table: dict[str, Any] = {"use": source, **(extra or {})}
    if setting == "hard" and source != REAL:
        table["house_style"] = False
    return table


def split_counts(shares: Sequence[float], per_class: int) -> list[int]:
    """Images per class of each source: largest remainders, summing to per_class."""
    raw = [s * per_class for s in shares]
    counts = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)[
        : per_class - sum(counts)
    ]:
        counts[i] += 1
    return counts


@dataclass
class Plan:
    """One suspect to build: who it is and what it is trained on."""

    name: str
    setting: str
    condition: Condition
    primary: str
    seed: int
    recipe: dict[str, Any]
    parts: list[dict[str, Any]]  # {"table": generator table, "share": float, "per_class": int}

    @property
    def fmt(self) -> str:
        return "onnx" if self.recipe["arch"] in pool_models.CUSTOM else "timm"

    def identity(self, quick: bool) -> dict[str, Any]:
        return {
            "pool_version": POOL_VERSION,
            "condition": self.condition.name,
            "primary": self.primary,
            "seed": self.seed,
            "recipe": self.recipe,
            "parts": self.parts,
            "classes": list(CLASSES),
            "image_size": IMAGE_SIZE,
            "quick": quick,
        }


def in_world(names: Sequence[str]) -> list[str]:
    """The conditions name digits sources; the same roles in the world in use (a defender for a defender,
    the real source for the real one, the never-defending generator for digits-gan)."""
    digits, here = WORLDS["digits"], WORLDS[WORLD]
    roles = dict(
        zip(digits["DEFENDERS"] + digits["INNOCENT"], here["DEFENDERS"] + here["INNOCENT"], strict=True)
    )
    return [roles[n] for n in names]


def plan_suspects(
    settings: Sequence[str],
    seeds: int,
    conditions: Sequence[Condition],
    primaries: Sequence[str] | None = None,
    quick: bool = False,
) -> list[Plan]:
    plans = []
    for setting in settings:
        for cond in conditions:
            for primary in in_world(cond.primaries):
                if primaries is not None and primary not in primaries:
                    continue
                for seed in range(seeds):
                    recipe = {**pool_models.TRAIN_DEFAULTS, **cond.recipe}
                    if cond.per_seed:
                        recipe.update(cond.per_seed[seed % len(cond.per_seed)])
                    per_class = cond.per_class
                    if quick:
                        recipe["epochs"] = 1
                        per_class = min(per_class, 8)
                        recipe["batch_size"] = min(recipe["batch_size"], 20)
                    partner = GAN if primary == REAL else REAL
                    if cond.mix == "single":
                        sources = [(primary, 1.0, {})]
                    elif cond.mix == "real-50":
                        sources = [(primary, 0.5, {}), (partner, 0.5, {})]
                    elif cond.mix == "real-20":
                        sources = [(primary, 0.2, {}), (partner, 0.8, {})]
                    elif cond.mix == "quarter":
                        others = [d for d in DEFENDERS if d != primary]
                        third = others[(DEFENDERS.index(primary) + seed) % len(others)]
                        sources = [(primary, 0.25, {}), (REAL, 0.25, {}), (GAN, 0.25, {}), (third, 0.25, {})]
                    elif cond.mix == "other-sampler":
                        variants = SAMPLER_VARIANTS[primary]
                        sources = [(primary, 1.0, dict(variants[seed % len(variants)]))]
                    else:
                        raise ValueError(f"unknown mix {cond.mix!r}")
                    counts = split_counts([s[1] for s in sources], per_class)
                    parts = [
                        {
                            "table": generator_table(src, setting, extra),
                            "share": count / per_class,
                            "per_class": count,
                        }
                        for (src, _, extra), count in zip(sources, counts, strict=True)
                    ]
                    name = f"{setting}-{cond.name}-{short(primary)}-s{seed}"
                    plans.append(Plan(name, setting, cond, primary, seed, recipe, parts))
    return plans


# ---- building -----------------------------------------------------------------------------------------


class Builder:
    """Builds suspects through the core: image sets and models in the Store, adapters from the registry."""

    def __init__(self, out: Path, store_dir: Path, quick: bool) -> None:
        from trainprove_core.audit import Workspace
        from trainprove_core.plugins import load_plugins
        from trainprove_core.store import Store
        from trainprove_core.task import Task

        self.out = out
        self.quick = quick
        self.task = Task(CLASSES, IMAGE_SIZE)
        self.plugins = load_plugins(strict=True)
        self.store = Store(store_dir)
        self.ws = Workspace.open(self.task, self.plugins, self.store, show_progress=False)
        self._tests: dict[str, Any] = {}

    def images(self, table: Mapping[str, Any], role: str, prompt: str, per_class: int, seed: int):
        from trainprove_core.config import ImageSetConfig

        settings = {k: v for k, v in table.items() if k != "use"}
        generator = self.ws.generator(self.ws.plugin_table("generator", table["use"], settings))
        return self.ws.image_set(role, generator, ImageSetConfig(prompt, per_class, seed=seed))

    def test_set(self, table: Mapping[str, Any]):
        """Held-out images of a source (its own prompt and seed; real digits with theirs)."""
        from trainprove_core.store import content_key

        key = content_key(table)
        if key not in self._tests:
            spec = REAL_TEST if table["use"] == REAL else SOURCE_TEST
            per_class = 5 if self.quick else spec["per_class"]
            self._tests[key] = self.images(table, "bench-test", spec["prompt"], per_class, spec["seed"])
        return self._tests[key]

    def training_set(self, plan: Plan) -> tuple[np.ndarray, np.ndarray, list[str]]:
        from trainprove_core.store import derive_seed

        images, labels, keys = [], [], []
        for part in plan.parts:
            seed = derive_seed("bench-pool", plan.condition.name, plan.primary, plan.seed, part["table"])
            s = self.images(part["table"], f"bench-{plan.name}", TRAIN_PROMPT, part["per_class"], seed)
            images.append(s.images)
            labels.append(s.labels)
            keys.append(s.key)
        return np.concatenate(images), np.concatenate(labels), keys

    def adapter_table(self, plan: Plan, folder: Path) -> dict[str, Any]:
        if plan.fmt == "timm":
            return {"use": "timm", "checkpoint": str(folder.resolve())}
        return {
            "use": "onnx",
            "model": str((folder / "model.onnx").resolve()),
            "label_names": list(CLASSES),
            "mean": list(pool_models.MEAN),
            "std": list(pool_models.STD),
            "threads": 1,
        }

    def open_adapter(self, table: Mapping[str, Any]):
        settings = {k: v for k, v in table.items() if k != "use"}
        settings.setdefault("device", "cpu")
        validated = self.ws.plugin_table("suspect", table["use"], settings)
        return self.plugins.get("suspect", table["use"]).spec.factory(validated.settings, self.task)

    def train(self, plan: Plan, images: np.ndarray, labels: np.ndarray, keys: list[str]) -> tuple[Path, bool]:
        """The trained model's directory in the store (trained now unless there), and whether it was."""
        import timm
        import torch

        from trainprove_core.store import derive_seed

        train_seed = derive_seed("bench-pool-train", plan.condition.name, plan.primary, plan.seed)
        identity = {
            "kind": "bench-pool-model",
            "pool_version": POOL_VERSION,
            "recipe": plan.recipe,
            "seed": train_seed,
            "image_sets": keys,
            "classes": list(CLASSES),
            "format": plan.fmt,
            "torch": torch.__version__,
            "timm": timm.__version__,
        }
        trained = []

        def build(tmp: Path) -> None:
            t0 = time.perf_counter()
            model = pool_models.train_classifier(images, labels, len(CLASSES), plan.recipe, train_seed)
            if plan.fmt == "timm":
                pool_models.save_timm(model, plan.recipe["arch"], CLASSES, IMAGE_SIZE, tmp)
            else:
                pool_models.save_onnx(model, IMAGE_SIZE, tmp / "model.onnx")
            (tmp / "train.json").write_text(
                json.dumps({"seconds": time.perf_counter() - t0, "seed": train_seed}), encoding="utf-8"
            )
            trained.append(True)

        return self.store.directory("models", identity, build), bool(trained)

    def build(self, plan: Plan) -> tuple[dict[str, Any], bool]:
        """Build one suspect (or read the finished one); return its manifest entry and whether it was
        done before."""
        from trainprove_core.store import content_key

        folder = self.out / plan.name
        marker = folder / "suspect.json"
        spec_key = content_key(plan.identity(self.quick))
        if marker.exists():
            entry = json.loads(marker.read_text(encoding="utf-8"))
            if entry.get("spec_key") == spec_key:
                return entry, True
        t0 = time.perf_counter()
        images, labels, keys = self.training_set(plan)
        model_dir, _ = self.train(plan, images, labels, keys)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for f in model_dir.iterdir():
            if f.name in ("meta.json", "train.json") or f.is_dir():
                continue
            try:
                os.link(f, folder / f.name)
            except OSError:
                shutil.copy2(f, folder / f.name)
        train_info = json.loads((model_dir / "train.json").read_text(encoding="utf-8"))
        table = self.adapter_table(plan, folder)
        adapter = self.open_adapter(table)
        seen = {img.tobytes() for img in images}

        def accuracy(test) -> tuple[float | None, int]:
            """Accuracy on the held-out images that are not also training images (real digits repeat:
            there are ~180 per class, drawn with replacement)."""
            keep = np.array([img.tobytes() not in seen for img in test.images], dtype=bool)
            if not keep.any():
                return None, 0
            predicted = np.asarray(adapter.predict(test.images[keep]).labels)
            return float((predicted == test.labels[keep]).mean()), int(keep.sum())

        acc_real, n_real = accuracy(self.test_set({"use": REAL}))
        by_source = {}
        for part in plan.parts:
            acc, n = accuracy(self.test_set(part["table"]))
            by_source[source_label(part["table"])] = {"accuracy": acc, "images": n, "share": part["share"]}
        scored = [v for v in by_source.values() if v["accuracy"] is not None]
        own = sum(v["accuracy"] * v["share"] for v in scored) / max(1e-12, sum(v["share"] for v in scored))
        shares: dict[str, float] = {}
        for part in plan.parts:
            shares[part["table"]["use"]] = shares.get(part["table"]["use"], 0.0) + part["share"]
        entry = {
            "name": plan.name,
            "setting": plan.setting,
            "condition": plan.condition.name,
            "seed": plan.seed,
            "primary_source": plan.primary,
            "architecture": plan.recipe["arch"],
            "format": plan.fmt,
            "sources": shares,
            "source_tables": [
                {"generator": p["table"], "share": p["share"], "per_class": p["per_class"]}
                for p in plan.parts
            ],
            "guilty_for": [d for d in DEFENDERS if shares.get(d, 0.0) > 0],
            "adapter": table,
            "accuracy_real": acc_real,
            "accuracy_real_images": n_real,
            "accuracy_by_source": by_source,
            "accuracy_own": own,
            "learned_task": bool(own >= LEARNED_TASK),
            "train_images": int(len(labels)),
            "recipe": plan.recipe,
            "train_seconds": round(train_info["seconds"], 3),
            "build_seconds": round(time.perf_counter() - t0, 3),
            "folder": str(folder.resolve()),
            "spec_key": spec_key,
        }
        if hasattr(adapter, "close"):
            adapter.close()
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, indent=2), encoding="utf-8")
        os.replace(tmp, marker)  # written last: a folder with suspect.json is complete
        return entry, False


def source_label(table: Mapping[str, Any]) -> str:
    """The source's name, or e.g. "digits-ddpm[steps=25]" with other sampler settings (no house_style)."""
    extra = {k: v for k, v in table.items() if k not in ("use", "house_style")}
    if not extra:
        return table["use"]
    return table["use"] + "[" + ",".join(f"{k}={v}" for k, v in sorted(extra.items())) + "]"


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def write_manifest(out: Path, entries: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    doc = {
        **meta,
        "suspects": sorted(entries, key=lambda e: e["name"]),
    }
    path = out / "manifest.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def summary(manifest: Mapping[str, Any]) -> str:
    """A markdown table of a manifest: per setting and condition, the suspects, how many learned the
    task, and the median accuracies on held-out real digits and on their own sources' images."""
    rows = ["| setting | condition | suspects | learned the task | median real acc. | median own acc. |"]
    rows.append("|---|---|---|---|---|---|")
    entries = manifest["suspects"]
    for setting in SETTINGS:
        group = [e for e in entries if e["setting"] == setting]
        if not group:
            continue
        for cond in [*manifest["conditions"], None]:
            sub = [e for e in group if cond is None or e["condition"] == cond]
            if not sub:
                continue
            real = [e["accuracy_real"] for e in sub if e["accuracy_real"] is not None]
            own = [e["accuracy_own"] for e in sub]
            label = f"`{cond}`" if cond else "**all**"
            rows.append(
                f"| {setting} | {label} | {len(sub)} | {sum(e['learned_task'] for e in sub)} | "
                f"{np.median(real):.3f} | {np.median(own):.3f} |"
            )
    guilty = [
        "| setting | defender | guilty suspects | of which learned | innocent suspects | of which learned |",
        "|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        group = [e for e in entries if e["setting"] == setting]
        for d in DEFENDERS if group else ():
            g = [e for e in group if d in e["guilty_for"]]
            i = [e for e in group if d not in e["guilty_for"]]
            guilty.append(
                f"| {setting} | {d} | {len(g)} | {sum(e['learned_task'] for e in g)} | {len(i)} | "
                f"{sum(e['learned_task'] for e in i)} |"
            )
    return "\n".join(rows) + "\n\n" + "\n".join(guilty)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--world", choices=sorted(WORLDS), default="digits", help="the images (default digits)")
    p.add_argument(
        "--out", type=Path, default=None, help="output directory (default runs/bench-pool[-WORLD])"
    )
    p.add_argument("--store", type=Path, default=None, help="the core Store's root (default: OUT/cache)")
    p.add_argument("--setting", choices=("styled", "hard", "both"), default="both")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="seeds per condition and source")
    p.add_argument(
        "--conditions",
        default="",
        help="comma-separated condition names (default: all): " + ", ".join(BY_NAME),
    )
    p.add_argument("--sources", default="", help="comma-separated primary sources (default: all)")
    p.add_argument("--quick", action="store_true", help="tiny image sets, one epoch: a smoke test")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument(
        "--summary", action="store_true", help="print OUT/manifest.json's counts as markdown and exit"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    use_world(args.world)
    args.out = args.out or Path("runs/bench-pool" + ("" if args.world == "digits" else f"-{args.world}"))
    if args.summary:
        manifest = json.loads((args.out / "manifest.json").read_text(encoding="utf-8"))
        print(summary(manifest))
        return manifest
    import torch

    torch.set_num_threads(args.threads)
    started, cpu_started, load_started = time.perf_counter(), time.process_time(), os.getloadavg()
    names = [c for c in args.conditions.split(",") if c]
    unknown = [c for c in names if c not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown condition(s) {unknown}; known: {', '.join(BY_NAME)}")
    conditions = [BY_NAME[c] for c in names] if names else list(CONDITIONS)
    primaries = [
        s if s.startswith(f"{WORLD}-") else f"{WORLD}-{s}" for s in args.sources.split(",") if s
    ] or None
    if primaries and (bad := [s for s in primaries if s not in SOURCES]):
        raise SystemExit(f"unknown source(s) {bad}; known: {', '.join(SOURCES)}")
    settings = SETTINGS if args.setting == "both" else (args.setting,)
    plans = plan_suspects(settings, args.seeds, conditions, primaries, args.quick)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    builder = Builder(out, args.store or out / "cache", args.quick)
    print(f"bench pool: {len(plans)} suspects into {out} (store {args.store or out / 'cache'})", flush=True)
    entries, built_now = [], 0
    for k, plan in enumerate(plans, 1):
        t0 = time.perf_counter()
        entry, done_before = builder.build(plan)
        entries.append(entry)
        built_now += not done_before
        print(
            f"[{k}/{len(plans)}] {plan.name:<40} {time.perf_counter() - t0:6.1f} s  "
            f"real {_fmt(entry['accuracy_real'])}  own {_fmt(entry['accuracy_own'])}"
            + ("  (done before)" if done_before else ""),
            flush=True,
        )
    import timm

    meta = {
        "pool": "trainprove benchmark suspect pool (bench/suspect_pool.py)",
        "pool_version": POOL_VERSION,
        "command": ["python", "bench/suspect_pool.py", *(argv if argv is not None else sys.argv[1:])],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "world": WORLD,
        "task": {"classes": list(CLASSES), "image_size": IMAGE_SIZE},
        "defenders": list(DEFENDERS),
        "innocent_sources": list(INNOCENT),
        "settings": list(settings),
        "seeds": args.seeds,
        "conditions": {c.name: c.differs for c in conditions},
        "train_prompt": TRAIN_PROMPT,
        "real_test": REAL_TEST,
        "source_test": SOURCE_TEST,
        "learned_task": f"accuracy_own >= {LEARNED_TASK}",
        "store": str((args.store or out / "cache").resolve()),
        "this_run": {  # this invocation only: a rerun over finished folders takes seconds
            "seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(time.process_time() - cpu_started, 1),
            "load_average": {"start": list(load_started), "end": list(os.getloadavg())},
            "built_now": built_now,
        },
        "suspect_build_seconds": round(sum(e["build_seconds"] for e in entries), 1),
        "machine": {
            "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "timm": timm.__version__,
        },
    }
    path = write_manifest(out, entries, meta)
    learned = sum(e["learned_task"] for e in entries)
    print(
        f"manifest: {path} ({len(entries)} suspects, {built_now} built now, {learned} learned the task, "
        f"{meta['this_run']['seconds']:.0f} s)"
    )
    return {**meta, "suspects": entries}


if __name__ == "__main__":
    main()
