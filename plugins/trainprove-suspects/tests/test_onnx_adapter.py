"""The `onnx` adapter against real exports of a timm model, compared with the same model run by torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import trainprove_suspects.plugin as plugin
from trainprove_suspects.onnx_model import OnnxSuspect

from trainprove_core.errors import ConfigError, InputError
from trainprove_core.testing import SuspectAdapterContract, build


def export(module, example, path, dynamic_batch=True, dynamo=False):
    """Export `module` to a single ONNX file, as a user would."""
    kwargs = {"input_names": ["images"], "output_names": ["out"], "external_data": False, "dynamo": dynamo}
    if dynamic_batch and dynamo:
        kwargs["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch")}}
    elif dynamic_batch:
        kwargs["dynamic_axes"] = {"images": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module.eval(), (example,), str(path), **kwargs)
    return path


class PixelsToLabels(torch.nn.Module):
    """A model exported with its preprocessing and argmax inside: uint8 NHWC in, class indices out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.permute(0, 3, 1, 2).float() / 127.5 - 1).argmax(1)


class BgrProbabilities(torch.nn.Module):
    """A model that takes BGR channels and ends in a softmax."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.flip(1)).softmax(1)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export(model, torch.zeros(2, 3, 16, 16), tmp_path_factory.mktemp("onnx") / "m.onnx")


class TestOnnxAdapter(SuspectAdapterContract):
    """The adapter contract, on a logits model exported with a dynamic batch axis."""

    identity_changes = ({"mean": [0.0, 0.0, 0.0]}, {"channel_order": "BGR"}, {"value_range": "0-255"})
    identity_keeps = ({"batch_size": 3}, {"threads": 2})

    @pytest.fixture
    def adapter_factory(self, exported, adapter_task):
        table = {"model": str(exported), "threads": 1}
        return lambda **settings: build(plugin, "suspect", "onnx", {**table, **settings}, adapter_task)

    @pytest.fixture
    def adapter_images(self, images):
        return images[:12]


@pytest.mark.parametrize(
    "dynamo",
    [False, pytest.param(True, marks=pytest.mark.slow)],
    ids=["torchscript-exporter", "dynamo-exporter"],
)
def test_logits_model_answers_like_torch(
    tmp_path, model, images, expected, task, onnx_settings, helpers, dynamo
):
    path = export(model, torch.zeros(2, 3, 16, 16), tmp_path / "m.onnx", dynamo=dynamo)
    suspect = OnnxSuspect(onnx_settings(model=str(path), threads=1, batch_size=16), task)
    answers = suspect.predict(images)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    np.testing.assert_allclose(answers.probabilities, helpers.softmax(expected), atol=1e-5)
    assert suspect.returns == "probabilities"
    assert suspect.layout == "NCHW" and suspect.fixed_batch is None
    assert suspect.providers[-1] == "CPUExecutionProvider"
    assert suspect.cost.remote is False


def test_fixed_batch_uint8_nhwc_label_model(tmp_path, model, images, expected, task, onnx_settings):
    # Batch fixed at 4 by the export; 10 images need a padded last run.
    path = export(
        PixelsToLabels(model),
        torch.zeros(4, 16, 16, 3, dtype=torch.uint8),
        tmp_path / "labels.onnx",
        dynamic_batch=False,
    )
    suspect = OnnxSuspect(onnx_settings(model=str(path), output_kind="labels", threads=1), task)
    assert (suspect.layout, suspect.fixed_batch, suspect.input_dtype) == ("NHWC", 4, np.uint8)
    answers = suspect.predict(images[:10])
    np.testing.assert_array_equal(answers.labels, expected[:10].argmax(1))
    assert answers.probabilities is None and suspect.returns == "labels"


def test_declared_preprocessing_bgr_0_255_resize(tmp_path, model, task, onnx_settings, helpers):
    """Images at 24 px for a model fixed at 16 px that wants BGR with mean/std in 0-255 units."""
    from PIL import Image

    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    path = export(
        BgrProbabilities(model), torch.zeros(1, 3, 16, 16), tmp_path / "bgr.onnx", dynamic_batch=False
    )
    settings = onnx_settings(
        model=str(path),
        output_kind="probabilities",
        channel_order="BGR",
        value_range="0-255",
        mean=[m * 255 for m in mean],
        std=[s * 255 for s in std],
        interpolation="bicubic",
        threads=1,
    )
    big = helpers.make_images(6, size=24, seed=7)
    answers = OnnxSuspect(settings, task.__class__(task.classes, 24)).predict(big)
    small = np.stack([np.asarray(Image.fromarray(im).resize((16, 16), Image.BICUBIC)) for im in big])
    reference = helpers.softmax(helpers.torch_logits(model, small, mean=mean, std=std))
    np.testing.assert_allclose(answers.probabilities, reference, atol=1e-5)


def test_label_names_are_the_models_own_order(tmp_path, model, images, expected, task, onnx_settings):
    path = export(model, torch.zeros(2, 3, 16, 16), tmp_path / "m.onnx")
    suspect = OnnxSuspect(onnx_settings(model=str(path), label_names=["two", "zero", "one"], threads=1), task)
    assert suspect.label_names == ["two", "zero", "one"]
    # Indices stay in the model's order; the core maps them to the task's by name.
    np.testing.assert_array_equal(suspect.predict(images).labels, expected.argmax(1))


def test_identity_follows_the_weights_and_the_preprocessing(tmp_path, model, task, onnx_settings, helpers):
    path = export(model, torch.zeros(2, 3, 16, 16), tmp_path / "m.onnx")
    a = OnnxSuspect(onnx_settings(model=str(path)), task).identity
    assert OnnxSuspect(onnx_settings(model=str(path), batch_size=3, threads=1), task).identity == a
    assert OnnxSuspect(onnx_settings(model=str(path), mean=[0.0, 0.0, 0.0]), task).identity != a
    other = export(helpers.build_model(seed=1), torch.zeros(2, 3, 16, 16), tmp_path / "m.onnx")
    assert OnnxSuspect(onnx_settings(model=str(other)), task).identity["model_sha256"] != a["model_sha256"]


def test_user_errors_name_the_file_and_the_fault(tmp_path, model, images, task, onnx_settings):
    with pytest.raises(InputError, match="does not exist"):
        OnnxSuspect(onnx_settings(model=str(tmp_path / "missing.onnx")), task)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match=r"junk\.onnx cannot be loaded"):
        OnnxSuspect(onnx_settings(model=str(junk)), task)
    path = export(model, torch.zeros(2, 3, 16, 16), tmp_path / "m.onnx")
    with pytest.raises(InputError, match=r"no output 'probs'; its outputs: out"):
        OnnxSuspect(onnx_settings(model=str(path), output="probs"), task)
    fixed = export(model, torch.zeros(1, 3, 16, 16), tmp_path / "fixed.onnx", dynamic_batch=False)
    with pytest.raises(InputError, match=r"fixed\.onnx.*takes 16x16 images"):
        OnnxSuspect(onnx_settings(model=str(fixed), resize=32), task)
    four = OnnxSuspect(onnx_settings(model=str(path), label_names=["a", "b", "c", "d"]), task)
    with pytest.raises(InputError, match=r"m\.onnx.*3 logits per image, but the label space has 4 classes"):
        four.predict(images[:2])
    as_labels = OnnxSuspect(onnx_settings(model=str(path), output_kind="labels"), task)
    with pytest.raises(InputError, match=r"shape \(2, 3\) where one label per image was expected"):
        as_labels.predict(images[:2])


def test_device_cuda_without_a_cuda_provider_is_a_config_error(tmp_path, model, task, onnx_settings):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    path = export(model, torch.zeros(2, 3, 16, 16), tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="no CUDA provider"):
        OnnxSuspect(onnx_settings(model=str(path), device="cuda"), task)
