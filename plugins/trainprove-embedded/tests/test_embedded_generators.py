"""The generator contract (`trainprove_core.testing.GeneratorContract`) and what the embedded generators add
to it, for every embedded generator and both weight sets, through the plugin's specs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from trainprove_embedded.plugin import CLASSES
from trainprove_embedded.styles import real_digits, to_uint8_rgb
from trainprove_embedded.weights import locate, shipped_dir

from trainprove_core.errors import ConfigError, InputError
from trainprove_core.testing import GeneratorContract

# diffusers' DPM-Solver builds a numpy array from a tensor in a way numpy 2 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

GENERATIVE = ("digits-ddpm", "digits-cfg", "digits-vae", "digits-gmm", "digits-gan")
VARIANTS = [(name, {}) for name in GENERATIVE + ("digits-real",)] + [
    (name, {"house_style": False}) for name in GENERATIVE
]
IDS = [f"{name}{'-plain' if table else ''}" for name, table in VARIANTS]


class TestEveryEmbeddedGenerator(GeneratorContract):
    """The contract every generator keeps (format, seeds, batch independence, identity), for each."""

    classes = CLASSES
    crowd = 150  # crosses the torch models' micro-batch of 128
    identity_keeps = ({"batch_size": 64},)

    @pytest.fixture(params=VARIANTS, ids=IDS)
    def generator_factory(self, request, make_generator):
        name, table = request.param
        return lambda **settings: make_generator(name, **{**table, **settings})


@pytest.mark.parametrize(("name", "table"), VARIANTS, ids=IDS)
def test_gray_digits_at_8_px_in_the_full_range(make_generator, make_requests, name, table):
    gen = make_generator(name, **table)
    assert gen.native_size == 8 and gen.batch_size == 512
    images = gen.generate(make_requests(list(range(10))))
    assert (images[..., 0] == images[..., 1]).all() and (images[..., 0] == images[..., 2]).all()
    # Digits: bright strokes on a dark background, using the full 0..255 range of the format.
    assert images.max() >= 200 and (images < 40).mean() > 0.15


@pytest.mark.parametrize("name", GENERATIVE)
def test_identity_is_json_and_names_weights_and_style(make_generator, name):
    styled, plain = make_generator(name), make_generator(name, house_style=False)
    for gen in (styled, plain):
        json.dumps(gen.identity)
        assert gen.identity["generator"] == name
        assert gen.identity["package"] == "trainprove-embedded" and gen.identity["version"]
    assert styled.identity["house_style"] and plain.identity["house_style"] is None
    assert styled.identity["weights_sha256"] != plain.identity["weights_sha256"]


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("digits-ddpm", {"steps": 5}),
        ("digits-cfg", {"steps": 4}),
        ("digits-cfg", {"guidance": 1.0}),
        ("digits-vae", {"temperature": 0.5}),
    ],
)
def test_identity_and_images_follow_sampler_settings(make_generator, make_requests, name, table):
    base, changed = make_generator(name), make_generator(name, **table)
    assert base.identity != changed.identity
    reqs = make_requests(list(range(10)))
    assert not np.array_equal(base.generate(reqs), changed.generate(reqs))


def test_class_index_conditions_the_model(make_generator, make_requests):
    gen = make_generator("digits-vae")
    ones = gen.generate(make_requests([1, 2, 3], [1, 1, 1]))
    zeros = gen.generate(make_requests([1, 2, 3], [0, 0, 0]))
    assert not np.array_equal(ones, zeros)


def test_real_source_draws_real_digits_of_the_class(make_generator, make_requests):
    gen = make_generator("digits-real")
    images, labels = real_digits()
    real = to_uint8_rgb(images)
    drawn = gen.generate(make_requests(list(range(40)), [3] * 40))
    for image in drawn:
        matches = np.flatnonzero((real == image).all(axis=(1, 2, 3)))
        assert len(matches) and (labels[matches] == 3).all()
    assert len({image.tobytes() for image in drawn}) > 30


@pytest.mark.parametrize("name", ["digits-gmm", "digits-real"])
def test_class_outside_the_digits_is_an_input_error(make_generator, make_requests, name):
    with pytest.raises(InputError, match="class indices \\[10\\]"):
        make_generator(name).generate(make_requests([1], [10]))


def test_bad_settings_are_input_errors(make_generator):
    with pytest.raises(ConfigError, match=r"\[generator\] key 'steps' must be at least 1 \(got 0\)"):
        make_generator("digits-ddpm", steps=0)
    with pytest.raises(ConfigError, match=r"\[generator\] key 'device': 'no-such-device' is not a device"):
        make_generator("digits-vae", device="no-such-device")
    with pytest.raises(ConfigError, match=r"\[generator\] key 'temperature' must be above 0 \(got 0.0\)"):
        make_generator("digits-vae", temperature=0.0)


def test_corrupt_or_missing_weights_are_input_errors(tmp_path):
    copy = tmp_path / "weights"
    shutil.copytree(shipped_dir(), copy)
    path, _ = locate("digits-vae", True, ".safetensors", copy)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match="corrupt"):
        locate("digits-vae", True, ".safetensors", copy)
    path.unlink()
    with pytest.raises(InputError, match="missing"):
        locate("digits-vae", True, ".safetensors", copy)
    (copy / "manifest.json").write_text("{")
    with pytest.raises(InputError, match="manifest"):
        locate("digits-vae", True, ".safetensors", copy)


def test_plugin_module_imports_nothing_heavy():
    code = (
        "import sys, trainprove_embedded.plugin as p; p.trainprove_generators(); "
        "heavy = {'torch', 'diffusers', 'sklearn', 'scipy'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
