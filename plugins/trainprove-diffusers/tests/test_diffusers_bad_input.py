import json
import shutil

import numpy as np
import pytest
from trainprove_diffusers.generator import make_generator
from trainprove_diffusers.tiny import quick_settings

from trainprove_core.errors import ConfigError, InputError
from trainprove_core.records import GenerationRequest
from trainprove_core.store import Store

ONE = [GenerationRequest("a cat", 0, "cat", 1)]


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """No network and an empty Hugging Face cache, as on a machine that cannot download weights."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))


def test_unknown_hub_id_names_the_setting(offline_hub):
    with pytest.raises(InputError, match=r"model = 'nobody/no-such-model'.*Hugging Face hub"):
        make_generator("stable-diffusion-v1-4", model="nobody/no-such-model")


def test_decoder_hub_id_is_checked_too(offline_hub, saved):
    with pytest.raises(InputError, match=r"decoder = 'stabilityai/stable-cascade'"):
        make_generator("stable-cascade", model=saved["stable-cascade"]["model"])


@pytest.mark.parametrize("value", ["not a hub id", "./missing-directory", "a/b/c"])
def test_a_value_that_is_neither_directory_nor_hub_id(value):
    with pytest.raises(InputError, match="model = .*not a directory and not a hub id"):
        make_generator("pixart-alpha", model=value)


def test_empty_directory_names_the_setting(tmp_path):
    with pytest.raises(InputError, match="model = .*no model_index.json"):
        make_generator("latent-consistency", model=str(tmp_path))


def test_incomplete_directory_fails_at_first_batch_and_no_set_is_recorded(saved, tmp_path):
    broken = tmp_path / "sd"
    shutil.copytree(saved["stable-diffusion-v1-4"]["model"], broken)
    shutil.rmtree(broken / "unet")
    g = make_generator(
        "stable-diffusion-v1-4",
        **quick_settings("stable-diffusion-v1-4", saved["stable-diffusion-v1-4"], model=str(broken)),
    )
    store = Store(tmp_path / "store")

    def run(pending):
        for i in pending:
            yield i, {"images": g.generate(ONE)}

    with pytest.raises(InputError, match=r"model = .*cannot load the StableDiffusionPipeline"):
        store.chunked("image-sets", {"g": g.identity}, [ONE], run)
    assert not store.has("image-sets", {"g": g.identity})


def test_directory_of_another_pipeline_is_refused_on_load(saved):
    settings = quick_settings(
        "pixart-alpha", saved["pixart-alpha"], model=saved["stable-diffusion-v1-4"]["model"]
    )
    with pytest.raises(InputError, match="cannot load the PixArtAlphaPipeline"):
        make_generator("pixart-alpha", **settings).generate(ONE)


def test_dtype_outside_the_choices_is_a_config_error():
    with pytest.raises(ConfigError, match="dtype"):
        make_generator("stable-diffusion-v1-4", dtype="fp64")


def test_dtype_the_device_cannot_run(saved, monkeypatch):
    import torch
    from trainprove_diffusers import loading

    def broken_group_norm(*args, **kwargs):
        raise RuntimeError('"group_norm" not implemented for the dtype')

    # The probe runs real kernels; to see its error path on a CPU that runs every dtype, one kernel fails.
    monkeypatch.setattr(torch.nn.functional, "group_norm", broken_group_norm)
    with pytest.raises(InputError, match="dtype = 'bf16' cannot run on device 'cpu'"):
        loading.resolve_dtype("bf16", "cpu", "fp16")


@pytest.mark.parametrize(
    "name, resolution",
    [
        ("stable-diffusion-v1-4", 100),
        ("pixart-alpha", 520),
        ("stable-cascade", 1000),
        ("latent-consistency", 0),
        ("stable-diffusion-v1-4", 8192),
    ],
)
def test_resolution_the_model_cannot_make(saved, name, resolution):
    with pytest.raises(InputError, match=f"resolution = {resolution}"):
        make_generator(name, **quick_settings(name, saved[name], resolution=resolution))


def test_resolution_checked_against_the_loaded_model(saved, tmp_path):
    # The tiny Stable Cascade has the real latent scales, so 128 px works; a decoder whose latent scale
    # was edited would make another size, which the generator refuses instead of returning it.
    decoder = tmp_path / "decoder"
    shutil.copytree(saved["stable-cascade"]["decoder"], decoder)
    index = json.loads((decoder / "model_index.json").read_text())
    index["latent_dim_scale"] = 8.0
    (decoder / "model_index.json").write_text(json.dumps(index))
    g = make_generator(
        "stable-cascade", **quick_settings("stable-cascade", saved["stable-cascade"], decoder=str(decoder))
    )
    with pytest.raises(InputError, match="resolution = 128: .* makes 96 px images"):
        g.generate(ONE)


def test_device_that_is_not_here():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(InputError, match="device = 'cuda'"):
        make_generator("latent-consistency", device="cuda")
    with pytest.raises(InputError, match="device = 'tpu'"):
        make_generator("latent-consistency", device="tpu")


def test_cpu_offload_needs_cuda(saved):
    with pytest.raises(InputError, match="cpu_offload"):
        make_generator(
            "pixart-alpha",
            **quick_settings("pixart-alpha", saved["pixart-alpha"], device="cpu", cpu_offload=True),
        )


def test_batch_size_zero(saved):
    with pytest.raises(ConfigError, match=r"key 'batch_size' must be at least 1 \(got 0\)"):
        make_generator("pixart-alpha", **quick_settings("pixart-alpha", saved["pixart-alpha"], batch_size=0))


def test_no_requests_no_work(saved):
    g = make_generator("pixart-alpha", **quick_settings("pixart-alpha", saved["pixart-alpha"]))
    empty = g.generate([])
    assert empty.shape == (0, 32, 32, 3) and empty.dtype == np.uint8
    assert g._loaded.pipes is None  # nothing asked for, nothing loaded
