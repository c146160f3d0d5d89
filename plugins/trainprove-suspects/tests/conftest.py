"""Fixtures: a small real timm classifier with random weights, images it tells apart, and helpers to
build adapters from audit-file tables exactly as an audit does."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from trainprove_suspects.options import HTTP_OPTIONS, ONNX_OPTIONS

from trainprove_core.config import validate_table
from trainprove_core.task import Task

CLASSES = ("zero", "one", "two")
SIZE = 16


def make_images(count: int, size: int = SIZE, seed: int = 1) -> np.ndarray:
    """uint8 RGB images, each a random colour plus noise, so a random network sees them as different."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(0, 256, (count, 1, 1, 3))
    noise = rng.normal(0, 40, (count, size, size, 3))
    return np.clip(colour + noise, 0, 255).astype(np.uint8)


def build_model(num_classes: int = 3, seed: int = 0) -> Any:
    """timm's `test_resnet` with random weights; the head is re-drawn and centred on the features of
    sample images so the classes it predicts are mixed (a fresh head predicts one class for everything)."""
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=num_classes).eval()
    with torch.no_grad():
        features = model.forward_head(
            model.forward_features(normalise(make_images(256, seed=seed + 100))), pre_logits=True
        )
        head = model.get_classifier()
        torch.nn.init.normal_(head.weight, std=0.2 / features.std(0).mean().item())
        head.bias.copy_(-(head.weight @ features.mean(0)))
    return model


def normalise(images: np.ndarray, mean: Any = (0.5, 0.5, 0.5), std: Any = (0.5, 0.5, 0.5)) -> Any:
    """The torch-side preprocessing: uint8 NHWC pixels to normalised float NCHW."""
    import torch

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def torch_logits(model: Any, images: np.ndarray, **norm: Any) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(normalise(images, **norm)).numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def model() -> Any:
    return build_model()


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    return make_images(40)


@pytest.fixture(scope="session")
def task() -> Task:
    return Task(CLASSES, SIZE)


@pytest.fixture(scope="session")
def expected(model: Any, images: np.ndarray) -> np.ndarray:
    """The model's logits on `images`, computed by torch directly."""
    logits = torch_logits(model, images)
    assert len(set(logits.argmax(1))) == 3, "the test model should predict every class on the test images"
    return logits


@pytest.fixture
def onnx_settings() -> Callable[..., dict[str, Any]]:
    """An `onnx` suspect table, validated like the audit file's."""
    return lambda **table: _validated(table, ONNX_OPTIONS)


@pytest.fixture
def http_settings() -> Callable[..., dict[str, Any]]:
    """An `http` suspect table, validated like the audit file's, with short waits for tests."""
    quick = {"backoff": 0.01, "timeout": 2.0, "retries": 3}
    return lambda **table: _validated({**quick, **table}, HTTP_OPTIONS)


def _validated(table: Mapping[str, Any], options: Any) -> dict[str, Any]:
    return validate_table(table, options, source="audit.toml", where="suspect s")


# The helpers, as fixtures: test modules never import conftest (several plugins have one).
@pytest.fixture(scope="session")
def helpers() -> Any:
    class Helpers:
        make_images = staticmethod(make_images)
        build_model = staticmethod(build_model)
        torch_logits = staticmethod(torch_logits)
        softmax = staticmethod(softmax)

    return Helpers
