"""The `transformers` adapter on a tiny random-weight `ViTForImageClassification` built here and saved
with `save_pretrained` (model and image processor): its answers are the model's own through its own
image processor, its classes are matched to the task's by name as hf-inference matches a server's, and
an audit of it gives the verdicts of the same weights exported to ONNX."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", reason="the [transformers] extra is not installed")

from styles_audit import CLASSES, DOCUMENT, SIZE, decisions, export_onnx  # noqa: E402
from trainprove_suspects.options import TRANSFORMERS_OPTIONS  # noqa: E402
from trainprove_suspects.transformers_model import TransformersSuspect  # noqa: E402

from trainprove_core.audit import run_audit  # noqa: E402
from trainprove_core.config import config_from_dict, validate_table  # noqa: E402
from trainprove_core.errors import ConfigError, InputError  # noqa: E402
from trainprove_core.glyphs import GlyphPlugin  # noqa: E402
from trainprove_core.plugins import load_plugins  # noqa: E402
from trainprove_core.store import Store  # noqa: E402

MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


def save_vit(folder: Path, id2label: list[str], size: int, images: np.ndarray, seed: int = 0) -> Path:
    """A one-layer ViT with random weights and its image processor, saved with save_pretrained. The
    head is re-drawn and centred on the features of `images` so that it predicts every class."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=size,
        patch_size=4,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=len(id2label),
        id2label=dict(enumerate(id2label)),
        label2id={name: i for i, name in enumerate(id2label)},
    )
    model = ViTForImageClassification(config).eval()
    processor = ViTImageProcessor(size={"height": size, "width": size}, image_mean=MEAN, image_std=STD)
    with torch.no_grad():
        pixels = processor(images=list(images), return_tensors="pt")["pixel_values"]
        features = model.vit(pixel_values=pixels)[0][:, 0, :]
        head = model.classifier
        torch.nn.init.normal_(head.weight, std=1.0 / features.std(0).mean().item())
        head.bias.copy_(-(head.weight @ features.mean(0)))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def vit_to_onnx(folder: Path, size: int, path: Path) -> Path:
    """The same weights, exported to ONNX (logits out)."""
    from transformers import AutoModelForImageClassification

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(pixel_values=x).logits

    return export_onnx(Logits(AutoModelForImageClassification.from_pretrained(folder)), size, path)


def settings(**table):
    return validate_table(table, TRANSFORMERS_OPTIONS, source="audit.toml", where="suspect s")


@pytest.fixture(scope="module")
def vit(tmp_path_factory, images, task):
    # The model's classes in another order and spelling than the task's ("zero", "one", "two").
    names = ["Two", "zero", "ONE"]
    return save_vit(tmp_path_factory.mktemp("vit") / "vendor-vit", names, task.image_size, images)


def test_answers_are_the_model_s_through_its_own_processor_in_the_task_s_classes(vit, images, task, helpers):
    adapter = TransformersSuspect(settings(model=str(vit), device="cpu"), task)
    assert not adapter.loaded  # nothing heavy until the audit asks
    answers = adapter.predict(images)
    model = transformers.AutoModelForImageClassification.from_pretrained(vit).eval()
    pixels = (
        torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)
    ) / (torch.tensor(STD).view(1, 3, 1, 1))
    with torch.no_grad():
        own = helpers.softmax(model(pixel_values=pixels).logits.numpy())
    in_task_order = own[:, [1, 2, 0]]  # model outputs Two, zero, ONE -> task zero, one, two
    np.testing.assert_allclose(answers.probabilities, in_task_order, atol=1e-5)
    assert (answers.labels == in_task_order.argmax(1)).all()
    assert len(set(answers.labels)) == 3
    assert adapter.identity["outputs"] == ["two", "zero", "one"]
    assert set(adapter.identity["files_sha256"]) == {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    }
    assert adapter.remarks == []


def test_the_answers_equal_the_same_weights_exported_to_onnx(vit, images, task, onnx_settings, tmp_path):
    from trainprove_suspects.onnx_model import OnnxSuspect

    local = TransformersSuspect(settings(model=str(vit), device="cpu"), task).predict(images)
    path = vit_to_onnx(vit, task.image_size, tmp_path / "vit.onnx")
    table = {
        "model": str(path),
        "mean": MEAN,
        "std": STD,
        "label_names": ["two", "zero", "one"],
        "threads": 1,
    }
    exported = OnnxSuspect(onnx_settings(**table), task).predict(images)
    order = [["two", "zero", "one"].index(c) for c in task.classes]
    np.testing.assert_allclose(local.probabilities, exported.probabilities[:, order], atol=1e-5)
    assert (np.array(["two", "zero", "one"])[exported.labels] == np.array(task.classes)[local.labels]).all()


def test_the_identity_follows_every_file_and_is_hashed_once(vit, task, tmp_path):
    copy = Path(shutil.copytree(vit, tmp_path / "copy"))
    base = TransformersSuspect(settings(model=str(copy)), task).identity
    assert TransformersSuspect(settings(model=str(copy), batch_size=3), task).identity == base
    (copy / ".cache" / "huggingface").mkdir(parents=True)  # what a hub download leaves in its folder
    (copy / ".cache" / "huggingface" / "download.lock").write_text("x")
    assert TransformersSuspect(settings(model=str(copy)), task).identity == base
    config = (copy / "preprocessor_config.json").read_text()
    (copy / "preprocessor_config.json").write_text(config.replace("0.25", "0.26"))
    assert TransformersSuspect(settings(model=str(copy)), task).identity != base


def test_weights_changed_after_the_audit_looked_are_refused_on_load(vit, task, tmp_path):
    copy = Path(shutil.copytree(vit, tmp_path / "copy"))
    adapter = TransformersSuspect(settings(model=str(copy), device="cpu"), task)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="changed while the audit ran"):
        adapter.load()


def test_an_output_outside_the_task_is_counted_never_mapped(tmp_path, images, task):
    folder = save_vit(tmp_path / "vit4", ["zero", "one", "two", "LABEL_3"], task.image_size, images, seed=2)
    adapter = TransformersSuspect(settings(model=str(folder), device="cpu"), task)
    answers = adapter.predict(images)
    unanswered = int((answers.labels == -1).sum())
    assert unanswered > 0 and set(answers.labels) - {-1} <= {0, 1, 2}
    np.testing.assert_allclose(answers.probabilities.sum(1), 1.0, atol=1e-5)
    (remark,) = adapter.remarks
    assert "'LABEL_3'" in remark and f"{unanswered} of {len(images)} images" in remark


@pytest.mark.parametrize(
    ("names", "label_names", "error", "message"),
    [
        (
            ["zero", "one", "cat"],
            None,
            ConfigError,
            r"key 'model': the model's id2label has no class for \['two'\]",
        ),
        (["zero", "one", "Two", "TWO"], None, ConfigError, "names the class 'two' twice"),
        (["LABEL_0", "LABEL_1", "LABEL_2"], ["zero", "One", "Tw o"], ConfigError, r"key 'label_names'"),
    ],
)
def test_label_space_mistakes_name_the_key_before_anything_loads(
    tmp_path, images, task, names, label_names, error, message
):
    folder = save_vit(tmp_path / "vit", names, task.image_size, images)
    table = {"model": str(folder)} | ({"label_names": label_names} if label_names else {})
    with pytest.raises(error, match=message):
        TransformersSuspect(settings(**table), task)


def test_generic_labels_with_label_names_are_the_task_s(tmp_path, images, task):
    folder = save_vit(tmp_path / "vit", ["LABEL_0", "LABEL_1", "LABEL_2"], task.image_size, images)
    adapter = TransformersSuspect(settings(model=str(folder), label_names=["one", "two", "zero"]), task)
    assert adapter.identity["outputs"] == ["one", "two", "zero"]


def test_folders_and_ids_that_cannot_serve_say_why(tmp_path, vit, task, monkeypatch):
    bare = Path(shutil.copytree(vit, tmp_path / "no-processor"))
    (bare / "preprocessor_config.json").unlink()
    with pytest.raises(InputError, match="no preprocessor_config.json; save the image processor"):
        TransformersSuspect(settings(model=str(bare)), task)
    with pytest.raises(InputError, match="neither a directory nor a hub id"):
        TransformersSuspect(settings(model="no/such/folder"), task)
    with pytest.raises(ConfigError, match="key 'revision'"):
        TransformersSuspect(settings(model=str(vit), revision="main"), task)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # never the network; the id is in no cache
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(InputError, match="'trainprove-test/no-such-vit' is not on the Hugging Face hub"):
        TransformersSuspect(settings(model="trainprove-test/no-such-vit"), task)


@pytest.mark.slow
def test_an_audit_of_a_save_pretrained_folder_equals_its_onnx_export(tmp_path):
    plugins = load_plugins(strict=True)
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    store = Store(tmp_path / "store")

    def audit(suspect: dict, name: str) -> dict:
        document = {**DOCUMENT, "suspect": [{"name": "vendor", **suspect}]}
        config = config_from_dict(document, plugins, source=f"{name}.toml", base_dir=tmp_path)
        result = run_audit(config, plugins, tmp_path / name, store, show_progress=False, html=False)
        assert not result.errors, result.errors
        return result.report

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (64, SIZE, SIZE, 3), dtype=np.uint8)
    names = [c.upper() for c in reversed(CLASSES)]  # another order, another case
    folder = save_vit(tmp_path / "vendor-vit", names, SIZE, images, seed=1)
    onnx = vit_to_onnx(folder, SIZE, tmp_path / "vendor-vit.onnx")
    local = audit({"use": "transformers", "model": str(folder), "device": "cpu"}, "transformers")
    onnx_table = {"model": str(onnx), "mean": MEAN, "std": STD, "label_names": list(reversed(CLASSES))}
    exported = audit({"use": "onnx", "threads": 1, **onnx_table}, "onnx")
    assert decisions(local) == decisions(exported)
    assert len(decisions(local)) == len(DOCUMENT["test"])
    (ours,), (theirs,) = local["suspects"], exported["suspects"]
    assert ours["accuracy"] == theirs["accuracy"]
    assert (ours["returns"], ours["unanswered"]) == ("probabilities", 0)


def test_without_transformers_installed_the_file_is_refused_saying_what_to_install(vit, task, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name, *a)
    )
    with pytest.raises(
        InputError, match=r"needs transformers: pip install 'trainprove-suspects\[transformers\]'"
    ):
        TransformersSuspect(settings(model=str(vit)), task)
