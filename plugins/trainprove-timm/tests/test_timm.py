"""The timm adapter loads every checkpoint layout a user may hand it, refuses unsafe or wrong ones with a
clear error, and answers exactly what the model computes."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
import trainprove_timm.plugin as plugin
from trainprove_timm.model import TimmSuspect
from trainprove_timm.training import TimmShadowTrainer, random_resized_crop

from trainprove_core.errors import InputError
from trainprove_core.task import Task
from trainprove_core.testing import SuspectAdapterContract, build

TASK = Task(("a", "b", "c"), 16)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def settings(checkpoint, **kw):
    base = {
        "checkpoint": str(checkpoint),
        "arch": None,
        "label_names": None,
        "mean": None,
        "std": None,
        "batch_size": 8,
        "device": "cpu",
    }
    return {**base, **kw}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False, num_classes=3).eval()


def images(n=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)


def reference(model, x):
    t = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        return torch.softmax(model(t), 1).numpy()


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("timm") / "w.safetensors"
    save_file(model.state_dict(), str(path))
    return path


class TestTimmAdapter(SuspectAdapterContract):
    """The adapter contract, on a bare safetensors checkpoint built from its audit-file table."""

    classes = TASK.classes
    identity_changes = ({"mean": [0.4, 0.4, 0.4]}, {"std": [0.3, 0.3, 0.3]})
    identity_keeps = ({"batch_size": 3}, {"label_names": ["c", "b", "a"]})

    @pytest.fixture
    def adapter_factory(self, checkpoint, adapter_task):
        table = {"checkpoint": str(checkpoint), "arch": "test_resnet", "device": "cpu"}
        return lambda **settings: build(plugin, "suspect", "timm", {**table, **settings}, adapter_task)


def test_timm_save_pretrained_layout(model, tmp_path):
    from timm.models._hub import save_for_hf

    save_for_hf(model, str(tmp_path), model_config={"label_names": ["a", "b", "c"]})
    suspect = TimmSuspect.from_settings(settings(tmp_path, mean=[0.5] * 3, std=[0.5] * 3), TASK)
    assert suspect.label_names == ["a", "b", "c"]
    x = images()
    np.testing.assert_allclose(suspect.predict(x).probabilities, reference(model, x), atol=1e-5)


def test_bare_state_dicts_safetensors_and_torch(model, tmp_path):
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pt")
    x = images()
    for name in ("w.safetensors", "w.pt"):
        suspect = TimmSuspect.from_settings(settings(tmp_path / name, arch="test_resnet"), TASK)
        answers = suspect.predict(x)
        np.testing.assert_allclose(answers.probabilities, reference(model, x), atol=1e-5)
        assert np.array_equal(answers.labels, answers.probabilities.argmax(1))
    a = TimmSuspect.from_settings(settings(tmp_path / "w.safetensors", arch="test_resnet"), TASK).identity
    assert a["weights_sha256"] and "checkpoint" not in a


def test_errors_name_the_checkpoint(model, tmp_path):
    with pytest.raises(InputError, match="checkpoint .*nowhere.safetensors does not exist"):
        TimmSuspect.from_settings(settings(tmp_path / "nowhere.safetensors", arch="test_resnet"), TASK)
    (tmp_path / "bad.safetensors").write_bytes(b"not weights at all")
    with pytest.raises(InputError, match="bad.safetensors could not be read as weights"):
        TimmSuspect.from_settings(settings(tmp_path / "bad.safetensors", arch="test_resnet"), TASK)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    with pytest.raises(InputError, match="does not fit timm architecture 'test_vit' with 3 classes"):
        TimmSuspect.from_settings(settings(tmp_path / "w.pt", arch="test_vit"), TASK)
    with pytest.raises(InputError, match="no `arch` given"):
        TimmSuspect.from_settings(settings(tmp_path / "w.pt"), TASK)
    with pytest.raises(InputError, match="timm has no architecture 'resnet-9000'"):
        TimmSuspect.from_settings(settings(tmp_path / "w.pt", arch="resnet-9000"), TASK)


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_never_run(tmp_path, capsys):
    torch.save({"state_dict": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="could not be read as weights"):
        TimmSuspect.from_settings(settings(tmp_path / "evil.pt", arch="test_resnet"), TASK)
    assert "pickled code ran" not in capsys.readouterr().out


def test_trainer_learns_and_reopens_through_the_adapter(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    x = np.zeros((120, 16, 16, 3), dtype=np.uint8)
    for i, c in enumerate(labels):  # class c: a bright band at rows 5c..5c+4
        x[i, 5 * c : 5 * c + 5] = 255
    x = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).astype(np.uint8)
    trainer = TimmShadowTrainer(
        arch="test_resnet",
        epochs=15,
        batch_size=32,
        lr=3e-3,
        weight_decay=0.01,
        crop_scale=(0.8, 1.0),
        hflip=True,
        device="cpu",
    )
    trainer.train(x, labels, TASK, tmp_path / "m")
    suspect = trainer.open(tmp_path / "m", TASK)
    assert suspect.label_names == list(TASK.classes)
    assert (suspect.predict(x).labels == labels).mean() > 0.9


@pytest.mark.parametrize("fast", [True, False])
def test_both_layouts_and_optimizers_learn_and_only_the_fast_ones_are_named(tmp_path, fast):
    """channels_last and fused_optimizer are on by default and part of the identity only when on, so a
    model trained before they existed (both off) keeps its store key."""
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 30)
    x = np.zeros((90, 16, 16, 3), dtype=np.uint8)
    for i, c in enumerate(labels):
        x[i, :, 5 * c : 5 * c + 5] = 255
    x = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).astype(np.uint8)
    settings = {"channels_last": fast, "fused_optimizer": fast}
    trainer = TimmShadowTrainer("test_efficientnet", 12, 32, 5e-3, 0.01, (0.8, 1.0), False, **settings)
    assert ("channels_last" in trainer.identity, "fused_optimizer" in trainer.identity) == (fast, fast)
    trainer.train(x, labels, TASK, tmp_path / "m")
    assert (trainer.open(tmp_path / "m", TASK).predict(x).labels == labels).mean() > 0.9
    assert TimmShadowTrainer().identity["channels_last"] and TimmShadowTrainer().identity["fused_optimizer"]


def test_batched_crop_keeps_the_batch_shape():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(2, 3, 1, 1)
    gen = torch.Generator().manual_seed(0)
    out = random_resized_crop(x, (1.0, 1.0), hflip=False, gen=gen)
    assert out.shape == x.shape


def test_the_arch_check_reads_timms_registry_from_its_sources_as_timm_itself_does():
    """`arch` is checked without importing timm (start-up of a cached audit): the names read from timm's
    sources are exactly those timm registers (every listed model, and every deprecated alias it still
    builds), and a wrong name is still refused with timm's close matches."""
    known = plugin.timm_architectures()
    assert set(timm.list_models()) <= known
    assert all(timm.is_model(name) for name in known)
    plugin._timm_arch("resnet18.a1_in1k", {})  # a pretrained tag, as timm.is_model ignores it
    with pytest.raises(ValueError, match="timm has no architecture 'resnet-18'; did you mean 'resnet18'"):
        plugin._timm_arch("resnet-18", {})
