"""The fashion world: its generators keep the generator contract and what the digit ones add to it, its data
are found (or missing with one clear line), its house styles and trainers are deterministic, and an audit
runs end to end on it.

The generators' weights ship, so their tests run everywhere; only the tests of `fashion-real` and the
end-to-end audit need Fashion-MNIST itself (Debian's dataset-fashion-mnist, or $TRAINPROVE_FASHION_MNIST)
and are skipped, saying so, where it is missing.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from trainprove_embedded import HOUSE_STYLES, diffusion, fashion, gan, gmm, vae
from trainprove_embedded.plugin import FASHION_CLASSES
from trainprove_embedded.weights import read_manifest, shipped_dir
from trainprove_embedded.worlds import FASHION

from trainprove_core.errors import InputError
from trainprove_core.testing import GeneratorContract

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

GENERATIVE = ("fashion-ddpm", "fashion-cfg", "fashion-vae", "fashion-gmm", "fashion-gan")
HAS_DATA = fashion.available()
needs_data = pytest.mark.skipif(
    not HAS_DATA,
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or "
    "TRAINPROVE_FASHION_MNIST=<folder of its four IDX files>)",
)
VARIANTS = (
    [(name, {}) for name in GENERATIVE]
    + [(name, {"house_style": False}) for name in GENERATIVE]
    + [pytest.param(("fashion-real", {}), marks=needs_data)]
)
IDS = [*GENERATIVE, *(f"{name}-plain" for name in GENERATIVE), "fashion-real"]


class TestEveryFashionGenerator(GeneratorContract):
    """The contract (format, seeds, batch independence, identity) for each fashion generator."""

    classes = FASHION_CLASSES
    crowd = 150  # crosses the torch models' micro-batch of 128
    identity_keeps = ({"batch_size": 64},)

    @pytest.fixture(params=VARIANTS, ids=IDS)
    def generator_factory(self, request, make_generator):
        name, table = request.param
        return lambda **settings: make_generator(name, **{**table, **settings})


def _requests(make_requests, n: int, base: int = 0):
    reqs = make_requests(list(range(base, base + n)))
    return [replace(r, class_name=FASHION_CLASSES[r.class_index]) for r in reqs]


@pytest.mark.parametrize("name", GENERATIVE)
def test_styled_generators_draw_colour_and_plain_ones_grey_at_16_px(make_generator, make_requests, name):
    styled, plain = make_generator(name), make_generator(name, house_style=False)
    assert styled.native_size == plain.native_size == 16
    reqs = _requests(make_requests, 20)
    colour = styled.generate(reqs).astype(float)
    grey = plain.generate(reqs).astype(float)

    def saturation(images: np.ndarray) -> float:
        return float((images.max(axis=-1) - images.min(axis=-1)).mean())

    # A house style is a palette: channels differ by tens of grey levels; a plain model's less, though its
    # channels are drawn apart and not quite grey (measured: ddpm 61 styled / 24 plain, gan 25.5 / 14.1).
    assert saturation(colour) > 20 and saturation(grey) < 30, (saturation(colour), saturation(grey))
    assert saturation(colour) > saturation(grey) + 8
    assert grey.max() >= 150  # the garments are drawn, not a flat field


@pytest.mark.parametrize("name", GENERATIVE)
def test_identity_names_the_world_weights_and_style(make_generator, name):
    styled, plain = make_generator(name), make_generator(name, house_style=False)
    for gen in (styled, plain):
        json.dumps(gen.identity)
        assert gen.identity["generator"] == name and gen.identity["package"] == "trainprove-embedded"
    assert styled.identity["house_style"] == HOUSE_STYLES[name] and plain.identity["house_style"] is None
    assert styled.identity["weights_sha256"] != plain.identity["weights_sha256"]


def test_the_class_index_conditions_the_model_and_an_index_outside_is_an_input_error(
    make_generator, make_requests
):
    gen = make_generator("fashion-vae")
    trousers = gen.generate(make_requests([1, 2, 3], [1, 1, 1]))
    bags = gen.generate(make_requests([1, 2, 3], [8, 8, 8]))
    assert not np.array_equal(trousers, bags)
    with pytest.raises(InputError, match=r"Fashion-MNIST's ten clothing classes.*class indices \[10\]"):
        gen.generate(make_requests([1], [10]))


def test_manifest_lists_the_fashion_weights_small_and_in_float16():
    files = read_manifest(shipped_dir())["files"]
    fashion_files = {name: entry for name, entry in files.items() if name.startswith("fashion-")}
    expected = {
        f"{model}-{variant}{'.npz' if model == 'fashion-gmm' else '.safetensors'}"
        for model in GENERATIVE
        for variant in ("styled", "plain")
    }
    assert set(fashion_files) == expected
    for name, entry in fashion_files.items():
        assert (shipped_dir() / name).stat().st_size == entry["bytes"]
        assert entry["threads"] == 1 and entry["seed"] == 0 and entry["train_seconds"] > 0
        assert entry["house_style"] == (HOUSE_STYLES[entry["model"]] if "styled" in name else None)
        assert entry.get("stored_as") == (None if name.endswith(".npz") else "float16")
    assert sum(entry["bytes"] for entry in fashion_files.values()) < 6_000_000


# The data: found where the user says, or one line saying how to get it.


def _write_idx(folder, images: np.ndarray, labels: np.ndarray, split: str, compress: bool) -> None:
    names = fashion.FILES[split]
    for name, array, dims in ((names[0], images, 3), (names[1], labels.astype(np.uint8), 1)):
        header = (0x0800 + dims).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
        raw = header + array.astype(np.uint8).tobytes()
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
        else:
            (folder / name).write_bytes(raw)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_a_folder_of_idx_files_is_read_from_the_option_or_the_environment(tmp_path, monkeypatch, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = np.arange(30) % 10
    for split in ("train", "test"):
        _write_idx(tmp_path, images, labels, split, compress)
    fashion.load.cache_clear()
    got, got_labels = fashion.load("test", str(tmp_path))
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(got_labels, labels)
    monkeypatch.setenv(fashion.ENV, str(tmp_path))
    assert fashion.data_dir() == tmp_path


def test_missing_data_is_one_line_saying_how_to_get_it(tmp_path, make_generator, monkeypatch):
    with pytest.raises(InputError) as err:
        make_generator("fashion-real", data_dir=str(tmp_path / "nowhere"))
    message = str(err.value)
    assert "\n" not in message and "nowhere" in message
    assert "dataset-fashion-mnist" in message and fashion.ENV in message
    monkeypatch.setenv(fashion.ENV, str(tmp_path))
    with pytest.raises(InputError, match=f"{fashion.ENV}.*lacks train-images-idx3-ubyte"):
        fashion.data_dir()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 8)
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(InputError, match="train-images-idx3-ubyte is not an IDX file of 3 dimension"):
        fashion.load("train", str(tmp_path))


@needs_data
def test_the_real_source_draws_test_images_of_the_class(make_generator, make_requests):
    gen = make_generator("fashion-real")
    images, labels = fashion.load("test")
    plain = (np.clip(fashion.plain(images), 0, 1) * 255).round().astype(np.uint8)
    drawn = gen.generate(make_requests(list(range(40)), [7] * 40))  # sneakers
    for image in drawn:
        matches = np.flatnonzero((plain == image).all(axis=(1, 2, 3)))
        assert len(matches) and (labels[matches] == 7).all()
    assert len({image.tobytes() for image in drawn}) > 35


# House styles and training: deterministic for a seed.


def _garments() -> np.ndarray:
    """60 synthetic 28x28 'garments' (bright blocks of different sizes): the styles need no real data."""
    out = np.zeros((60, 28, 28), dtype=np.uint8)
    for i in range(60):
        half = 4 + i % 9
        out[i, 14 - half : 14 + half, 14 - half // 2 : 14 + half // 2 + 1] = 120 + 2 * i
    return out


@pytest.mark.parametrize("style", sorted(fashion.STYLES))
def test_each_house_style_is_a_deterministic_colour_rendering(style):
    images = _garments()
    plain = fashion.render(images, None)
    drawn = fashion.render(images, style)
    assert drawn.shape == plain.shape == (60, 16, 16, 3) and drawn.dtype == np.float32
    assert 0.0 <= drawn.min() and drawn.max() <= 1.0
    np.testing.assert_array_equal(drawn, fashion.render(images, style))
    np.testing.assert_array_equal(plain[..., 0], plain[..., 2])
    assert np.abs(drawn - plain).mean() > 0.1
    assert (drawn.max(axis=-1) - drawn.min(axis=-1)).mean() > 0.05  # coloured (grain: a green tint)
    if style != "grain":  # the grain is drawn per rendered set; the rest is image by image
        np.testing.assert_array_equal(fashion.render(images[5:6], style)[0], drawn[5])


def test_the_house_styles_differ_from_each_other():
    images = _garments()
    drawn = {style: fashion.render(images, style) for style in fashion.STYLES}
    styles = sorted(drawn)
    for i, a in enumerate(styles):
        for b in styles[i + 1 :]:
            assert np.abs(drawn[a] - drawn[b]).mean() > 0.08, (a, b)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


@pytest.mark.parametrize(
    "train",
    [
        lambda x, y, s: diffusion.train(replace(diffusion.FASHION_DDPM, train_steps=2), x, y, s, log=print),
        lambda x, y, s: diffusion.train(replace(diffusion.FASHION_CFG, train_steps=2), x, y, s, log=print),
        lambda x, y, s: vae.train(x, y, s, epochs=1, world=FASHION),
        lambda x, y, s: gan.train(x, y, s, steps=3, world=FASHION),
        lambda x, y, s: gmm.train(np.concatenate([x] * 3), np.concatenate([y] * 3), s, world=FASHION),
    ],
    ids=["ddpm", "cfg", "vae", "gan", "gmm"],
)
def test_fashion_training_is_deterministic_per_seed(train):
    torch.set_num_threads(1)
    x = fashion.render(_garments(), "sunset")
    y = np.arange(60) % 10
    first, stats = train(x, y, 0)
    second, _ = train(x, y, 0)
    assert _same(first, second)
    assert all(np.isfinite(v) for v in stats.values() if isinstance(v, float))


# End to end: a real audit in the fashion world.


@needs_data
def test_a_fleet_of_two_fashion_generators_attributes_each_suspect(tmp_path):
    """Two fashion generators as candidates and `fashion-real` a known source that is no candidate; a
    suspect trained on each of the three; `pixel-logistic` models (the core's test kit) keep it short."""
    from trainprove_core.audit import Workspace
    from trainprove_core.config import ImageSetConfig
    from trainprove_core.fleet import fleet_from_dict, run_fleet
    from trainprove_core.glyphs import GlyphPlugin
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store
    from trainprove_core.task import Task

    plugins = load_plugins(strict=True)
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    store = Store(tmp_path / "store")
    ws = Workspace.open(Task(FASHION_CLASSES, 16), plugins, store, show_progress=False)
    suspects = []
    for source in ("fashion-gmm", "fashion-vae", "fashion-real"):
        generator = ws.generator(ws.plugin_table("generator", source, {}))
        images = ws.image_set("suspect", generator, ImageSetConfig("an image of a {label}", 30, seed=5))
        model = ws.trained_model(ws.plugin_table("shadow-trainer", "pixel-logistic", {}), images)[0]
        name = source.removeprefix("fashion-")
        suspects.append({"name": name, "use": "pixel-logistic", "model_dir": str(model), "truth": source})
    document = {
        "seed": 1,
        "fleet": {"known_sources": ["fashion-real"]},
        "task": {"classes": list(FASHION_CLASSES), "image_size": 16},
        "generator": [{"use": "fashion-gmm"}, {"use": "fashion-vae"}],
        "shadow": {"prompt": "a {label}", "per_class": 30, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 30, "batch_size": 20},
        "suspect": suspects,
    }
    fleet = fleet_from_dict(document, plugins, source="fashion.toml")
    result = run_fleet(fleet, plugins, tmp_path / "out", store, show_progress=False)
    assert [(r["suspect"], r["text"], r["correct"]) for r in result.attribution["suspects"]] == [
        ("gmm", "from fashion-gmm", True),
        ("vae", "from fashion-vae", True),
        ("real", "none of the candidates", True),
    ]
