"""Image sets as files: `trainprove generate AUDIT --export DIR` and `trainprove sample` write an
ImageFolder layout that torchvision and `datasets` load, holding the store's images byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from core_test_helpers import run_cli

from trainprove_core.audit import AuditRun, image_requests
from trainprove_core.cli import cli
from trainprove_core.config import load_config
from trainprove_core.errors import ConfigError, InputError
from trainprove_core.export import FORMAT, MANIFEST, parse_settings, sample
from trainprove_core.store import Store

CLASSES = ["disc", "ring", "hbar"]
AUDIT = """
seed = 3

[task]
classes = ["disc", "ring", "hbar"]
image_size = 16

[generator]
use = "shapes"
style = 0.2
log = "{log}"

[shadow]
prompt = "a {{label}}"
per_class = 4
trainer = "pixel-logistic"

[validation]
prompt = "a photo of a {{label}}"
per_class = 5
batch_size = 5

[[suspect]]
name = "s"
use = "pixel-logistic"
model_dir = "nowhere"
"""


def pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


@pytest.fixture
def exported(tmp_path, plugins):
    """An audit, its sets generated and exported by `trainprove generate --export`, and its AuditRun."""
    audit = tmp_path / "audit.toml"
    audit.write_text(AUDIT.format(log=tmp_path / "seeds.log"))
    store = tmp_path / "store"
    args = ["generate", str(audit), "--out", str(tmp_path / "sheets"), "--export", str(tmp_path / "sets")]
    result = CliRunner().invoke(
        cli, [*args, "--store", str(store), "--no-progress"], obj={"plugins": plugins}
    )
    assert result.exit_code == 0, result.output
    assert "exported to" in result.output
    run = AuditRun(load_config(audit, plugins), plugins, Store(store), show_progress=False)
    return tmp_path, run


def test_export_is_an_imagefolder_of_the_stores_images(exported):
    from torchvision.datasets import ImageFolder

    root, run = exported
    for role, image_set, cfg in (
        ("shadow", run.shadow_set, run.config.shadow),
        ("validation", run.validation, run.config.validation),
    ):
        folder = root / "sets" / role
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["format"] == FORMAT and manifest["key"] == image_set.key
        assert manifest["classes"] == CLASSES and manifest["generator"] == "shapes"
        assert manifest["identity"] == image_set.identity
        requests = image_requests(run.task, cfg)
        assert [(r["prompt"], r["seed"]) for r in manifest["images"]] == [
            (q.prompt, q.seed) for q in requests
        ]
        by_file = {r["file"]: (i, r) for i, r in enumerate(manifest["images"])}

        dataset = ImageFolder(str(folder))
        assert dataset.classes == sorted(CLASSES) and len(dataset) == len(image_set)
        for (path, target), (image, _) in zip(dataset.samples, dataset, strict=True):
            position, record = by_file[Path(path).relative_to(folder).as_posix()]
            assert dataset.classes[target] == record["class"] == CLASSES[image_set.labels[position]]
            expected = image_set.images[position]
            assert np.array_equal(np.asarray(image), expected)  # ImageFolder's own loader
            assert hashlib.sha256(expected.tobytes()).hexdigest() == record["pixels_sha256"]
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == record["sha256"]


def test_export_loads_with_datasets_imagefolder(exported, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, run = exported
    folder = root / "sets" / "validation"
    manifest = json.loads((folder / MANIFEST).read_text())
    dataset = datasets.load_dataset(
        "imagefolder", data_dir=str(folder), split="train", cache_dir=str(tmp_path / "hf")
    )
    names = dataset.features["label"].names
    assert names == sorted(CLASSES) and len(dataset) == len(run.validation)
    loaded = sorted(
        (names[row["label"]], hashlib.sha256(np.asarray(row["image"].convert("RGB")).tobytes()).hexdigest())
        for row in dataset
    )
    assert loaded == sorted((r["class"], r["pixels_sha256"]) for r in manifest["images"])


def test_sample_makes_the_audit_sets_images_from_the_same_store_entry(exported, plugins):
    root, run = exported
    log = root / "seeds.log"
    made = log.read_text().split()
    validation = run.config.validation
    assert sorted(map(int, made)) == sorted(
        [r.seed for r in image_requests(run.task, run.config.shadow)]
        + [r.seed for r in image_requests(run.task, validation)]
    )
    manifest = sample(
        plugins,
        Store(root / "store"),
        "shapes",
        root / "sample",
        classes=tuple(CLASSES),
        per_class=validation.per_class,
        prompt=validation.prompt,
        seed=validation.seed,
        image_size=16,
        settings={"style": 0.2, "log": str(log)},
        show_progress=False,
    )
    assert log.read_text().split() == made  # found in the store: nothing generated again
    exported_manifest = json.loads((root / "sets" / "validation" / MANIFEST).read_text())
    assert manifest["key"] == run.validation.key
    assert manifest["images"] == exported_manifest["images"]
    for record in manifest["images"]:
        assert (root / "sample" / record["file"]).read_bytes() == (
            root / "sets" / "validation" / record["file"]
        ).read_bytes()

    # A fresh store: the generator is asked for exactly the audit set's seeds.
    fresh_log = root / "fresh.log"
    sample(
        plugins,
        Store(root / "fresh-store"),
        "shapes",
        root / "fresh",
        classes=tuple(CLASSES),
        per_class=validation.per_class,
        prompt=validation.prompt,
        seed=validation.seed,
        image_size=16,
        settings={"style": 0.2, "log": str(fresh_log)},
        show_progress=False,
    )
    assert list(map(int, fresh_log.read_text().split())) == [r["seed"] for r in manifest["images"]]
    assert (
        pixels(root / "fresh" / "ring" / "00003.png").tobytes()
        == pixels(root / "sample" / "ring" / "00003.png").tobytes()
    )


def test_export_replaces_an_earlier_export_and_refuses_other_folders(exported, plugins):
    root, run = exported
    other = root / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    options = {"classes": tuple(CLASSES), "per_class": 2, "prompt": "a {label}", "seed": 0, "image_size": 16}
    with pytest.raises(InputError, match="not an earlier export"):
        sample(plugins, Store(root / "store"), "shapes", other, show_progress=False, **options)
    assert (other / "notes.txt").read_text() == "keep me"
    again = sample(
        plugins, Store(root / "store"), "shapes", root / "sets" / "shadow", show_progress=False, **options
    )
    assert len(again["images"]) == 6 and len(list((root / "sets" / "shadow").rglob("*.png"))) == 6
    assert not list(root.glob("sets/.*partial*"))


@pytest.mark.parametrize(
    ("generator", "options", "message"),
    [
        ("shapez", {}, "Did you mean 'shapes'"),
        ("shapes", {"settings": {"stile": 1.0}}, "unknown key 'stile'"),
        ("shapes", {"settings": {"style": "a lot"}}, "key 'style' must be float"),
        ("shapes", {"per_class": 0}, "'per_class' must be at least 1"),
        ("shapes", {"prompt": "a {lable}"}, "not a valid template"),
        ("shapes", {"image_size": 2}, "'image_size' must be at least 4"),
        ("shapes", {"classes": ("a", "a")}, "must be unique"),
        ("shapes", {"classes": None}, "--classes is needed"),
        ("shapes", {"classes": ("a/b", "c")}, "cannot be a folder name"),
        ("shapes", {"classes": ("Cat", "cat")}, "differ only in case"),
    ],
)
def test_sample_refuses_bad_input_before_any_work(tmp_path, plugins, generator, options, message):
    settings = {"classes": tuple(CLASSES), "per_class": 2, "prompt": "a {label}", "seed": 0, "image_size": 16}
    settings.update(options)
    with pytest.raises((ConfigError, InputError), match=message):
        sample(
            plugins, Store(tmp_path / "store"), generator, tmp_path / "out", show_progress=False, **settings
        )
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()


def test_parse_settings_reads_toml_values_and_plain_text():
    assert parse_settings(("steps=4", "scale=0.5", "fast=true", "crop=[0.5, 1.0]", "model=./my-model")) == {
        "steps": 4,
        "scale": 0.5,
        "fast": True,
        "crop": [0.5, 1.0],
        "model": "./my-model",
    }
    assert parse_settings(('name="a b"', "id=org/name")) == {"name": "a b", "id": "org/name"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_settings(("novalue",))


@pytest.mark.slow
def test_sample_command_with_an_embedded_generator(tmp_path):
    """The real command, as a user runs it: a class-conditional generator brings its own classes."""
    out = tmp_path / "digits"
    args = ["sample", "digits-gmm", "--per-class", "3", "--out", str(out), "--seed", "7"]
    result = run_cli(*args, "--store", str(tmp_path / "store"), "--no-progress", "--set", "house_style=false")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["classes"][:2] == ["zero", "one"] and manifest["image_size"] == 8
    assert len(list(out.glob("*/*.png"))) == 30 and manifest["seed"] == 7
    bad = run_cli(*args, "--store", str(tmp_path / "store"), "--set", "house_stile=false")
    assert (
        bad.returncode == 2 and "did you mean 'house_style'" in bad.stderr and "Traceback" not in bad.stderr
    )
