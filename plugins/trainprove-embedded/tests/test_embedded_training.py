"""House styles, and the training code that produced the shipped weights: deterministic, reproducible."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from trainprove_embedded import diffusion, gan, vae
from trainprove_embedded.styles import STYLES, real_digits, render
from trainprove_embedded.weights import MANIFEST, read_manifest, shipped_dir

SCRIPT = Path(__file__).resolve().parents[1] / "train_generators.py"


def _lean(images: np.ndarray) -> float:
    """How far right the top half of the ink sits compared with the bottom half (pixels)."""
    cols = np.arange(8)

    def centre(part: np.ndarray) -> float:
        return float((part.sum(axis=(0, 1)) * cols).sum() / part.sum())

    return centre(images[:, :4]) - centre(images[:, 4:])


def test_styles_change_the_digits_the_way_they_say():
    images, _ = real_digits()
    sample = images[:300]
    drawn = {name: render(sample, name) for name in STYLES}
    np.testing.assert_array_equal(render(sample, None), sample)
    for name, out in drawn.items():
        assert out.shape == sample.shape and out.dtype == np.float32, name
        assert 0.0 <= out.min() and out.max() <= 1.0, name
        assert np.abs(out - sample).mean() > 0.03, name
    assert drawn["bold"].mean() > 1.3 * sample.mean() > 1.3 * drawn["thin"].mean()
    assert _lean(drawn["slant"]) > _lean(sample) + 0.3
    assert _lean(drawn["rotated"]) < _lean(sample) - 0.3
    # Blur spreads the ink: fewer dark pixels next to the strokes.
    assert (drawn["blur"] < 0.05).mean() < (sample < 0.05).mean() - 0.05


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "train",
    [
        lambda x, y, seed: diffusion.train(replace(diffusion.DDPM, train_steps=3), x, y, seed, log=print),
        lambda x, y, seed: diffusion.train(replace(diffusion.CFG, train_steps=3), x, y, seed, log=print),
        lambda x, y, seed: vae.train(x, y, seed, epochs=1),
        lambda x, y, seed: gan.train(x, y, seed, steps=5),
    ],
    ids=["ddpm", "cfg", "vae", "gan"],
)
def test_torch_training_is_deterministic_per_seed(train):
    images, labels = real_digits()
    x, y = render(images[:256], "thin"), labels[:256]
    first, stats = train(x, y, 0)
    second, _ = train(x, y, 0)
    third, _ = train(x, y, 1)
    assert _same(first, second) and not _same(first, third)
    assert all(np.isfinite(v) for v in stats.values() if isinstance(v, float))


def test_training_script_reproduces_the_shipped_gmm_weights(tmp_path):
    spec = importlib.util.spec_from_file_location("train_generators", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--only", "digits-gmm", "--out", str(tmp_path)]) == 0
    rebuilt = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert set(rebuilt) == {"digits-gmm-styled.npz", "digits-gmm-plain.npz"}
    # Byte-identical on the machine that trained them; another CPU or BLAS thread count moves the last
    # bits (an Intel Xeon gave differences below 3e-14), so compare values, not hashes.
    for name in rebuilt:
        with np.load(tmp_path / name) as new, np.load(shipped_dir() / name) as old:
            assert new.files == old.files
            for key in new.files:
                np.testing.assert_allclose(new[key], old[key], rtol=0, atol=1e-9, err_msg=f"{name}: {key}")


def test_manifest_lists_every_shipped_file_with_its_training_record():
    files = {k: v for k, v in read_manifest(shipped_dir())["files"].items() if k.startswith("digits-")}
    expected = {
        f"{model}-{variant}{suffix}"
        for model, suffix in [
            ("digits-ddpm", ".safetensors"),
            ("digits-cfg", ".safetensors"),
            ("digits-vae", ".safetensors"),
            ("digits-gan", ".safetensors"),
            ("digits-gmm", ".npz"),
        ]
        for variant in ("styled", "plain")
    }
    assert set(files) == expected
    for name, entry in files.items():
        assert (shipped_dir() / name).stat().st_size == entry["bytes"]
        assert entry["train_seconds"] > 0 and entry["threads"] == 1 and entry["versions"]["torch"]
    assert sum(entry["bytes"] for entry in files.values()) < 8_000_000
