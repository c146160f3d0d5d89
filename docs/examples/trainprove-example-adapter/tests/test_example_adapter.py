"""The example adapter: the contract every adapter keeps (`trainprove_core.testing`), and the adapter
found the way trainprove finds any plugin, through its installed entry point."""

from __future__ import annotations

import numpy as np
import pytest
import trainprove_example_adapter.plugin as plugin

from trainprove_core import ImageSet, InputError, Task
from trainprove_core.audit import Workspace
from trainprove_core.config import validate_table
from trainprove_core.plugins import load_plugins
from trainprove_core.store import Store
from trainprove_core.testing import SuspectAdapterContract, build


@pytest.fixture
def weights(tmp_path):
    """A model whose answer is known without running it: "bright" wins when the mean grey is over 0.5."""
    side = 8
    w = np.stack([np.full(side * side, 20 / side**2), np.full(side * side, -20 / side**2)])
    path = tmp_path / "brightness.npz"
    np.savez(path, W=w, b=np.array([-10.0, 10.0]), classes=np.array(["bright", "dark"]))
    return path


class TestNpzLinear(SuspectAdapterContract):
    """Every check an adapter must pass, inherited: give it a factory and it runs them."""

    classes = ("dark", "bright")
    identity_keeps = ({"batch_size": 7},)  # how answers are chunked does not change them

    @pytest.fixture
    def adapter_factory(self, weights, adapter_task):
        table = {"weights": str(weights)}
        return lambda **settings: build(plugin, "suspect", "npz-linear", {**table, **settings}, adapter_task)


def test_identity_follows_the_weights(weights, tmp_path):
    task = Task(("dark", "bright"), 16)
    other = tmp_path / "other.npz"
    with np.load(weights) as data:
        np.savez(other, W=-data["W"], b=data["b"], classes=data["classes"])
    a, b = (build(plugin, "suspect", "npz-linear", {"weights": str(w)}, task) for w in (weights, other))
    assert a.identity["weights_sha256"] != b.identity["weights_sha256"] and "weights" not in a.identity


def test_registered_through_the_entry_point():
    registered = load_plugins(strict=True).suspect_adapter("npz-linear")
    assert registered.distribution == "trainprove-example-adapter"
    assert [o.name for o in registered.spec.options] == ["weights", "side", "batch_size"]


def test_answers_in_the_task_label_space(weights, tmp_path):
    plugins = load_plugins(strict=True)
    spec = plugins.get("suspect", "npz-linear").spec
    task = Task(("dark", "bright"), 16)  # the model's own order is ("bright", "dark")
    settings = validate_table({"weights": str(weights)}, spec.options, source="audit.toml", where="suspect")
    suspect = spec.factory(settings, task)

    levels = np.array([20, 240, 100, 200, 40])
    images = np.broadcast_to(levels[:, None, None, None], (5, 16, 16, 3)).astype(np.uint8)
    workspace = Workspace.open(task, plugins, Store(tmp_path / "store"), show_progress=False)
    validation = ImageSet("validation", "v", images, np.zeros(5, dtype=np.int64), {})
    answers, _ = workspace.answers("example", suspect, validation)
    np.testing.assert_array_equal(answers.labels, [0, 1, 0, 1, 0])  # task indices: dark = 0, bright = 1
    assert answers.probabilities.shape == (5, 2)
    np.testing.assert_allclose(answers.probabilities.sum(axis=1), 1, rtol=1e-6)


def test_a_wrong_file_is_an_input_error(tmp_path):
    spec = load_plugins(strict=True).get("suspect", "npz-linear").spec
    bad = tmp_path / "bad.npz"
    np.savez(bad, W=np.zeros((2, 3)))
    settings = validate_table({"weights": str(bad)}, spec.options, source="audit.toml", where="suspect")
    with pytest.raises(InputError, match="bad.npz: not an npz-linear model"):
        spec.factory(settings, Task(("a", "b"), 16))
