"""A hub id that cannot be loaded offline is an audit-file error when the file is loaded, not after minutes
of pipeline loading: the `model` (and `decoder`) options carry a cheap check of the local cache."""

import json
from importlib import metadata

import pytest
from trainprove_diffusers import plugin as diffusers_plugin

from trainprove_core.config import load_config
from trainprove_core.errors import ConfigError
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import DecisionTestSpec
from trainprove_core.testing import isolated_plugins


class DefaultTest:
    """Stands in for the `trainprove` decision test that an audit without [[test]] runs."""

    @hookimpl
    def trainprove_decision_tests(self):
        return [DecisionTestSpec("trainprove", lambda settings: object(), "stand-in")]


AUDIT = """
[task]
classes = ["cat", "dog"]
image_size = 32
[generator]
use = "{use}"
{generator}
[shadow]
prompt = "a {{label}}"
per_class = 2
[validation]
prompt = "a photo of a {{label}}"
per_class = 2
batch_size = 2
[[suspect]]
name = "s"
use = "timm"
checkpoint = "model.safetensors"
"""


@pytest.fixture
def hub_cache(monkeypatch, tmp_path):
    """An empty Hugging Face cache, and the hub switched off (HF_HUB_OFFLINE)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cached_pipeline(cache, repo_id, components, listed=None, commit="0123abcd"):
    """A snapshot of `repo_id` in the cache layout: refs/main -> commit, with a folder of the given files
    per component, and a model_index.json listing `listed` (default: every component)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    index = {"_class_name": "StableDiffusionPipeline", "safety_checker": [None, None]}
    for name in components if listed is None else listed:
        index[name] = ["diffusers", "Something"]
    for name, files in components.items():
        (snapshot / name).mkdir()
        for f in files:
            (snapshot / name / f).write_text("{}")
    (snapshot / "model_index.json").write_text(json.dumps(index))
    return snapshot


def _load(tmp_path, generator, use="stable-diffusion-v1-4"):
    path = tmp_path / "audit.toml"
    path.write_text(AUDIT.format(use=use, generator=generator))
    # The shadow trainer comes from the installed timm plugin, by its entry point (plugins never import
    # each other).
    (timm,) = metadata.entry_points(group="trainprove", name="trainprove-timm")
    plugins = isolated_plugins(
        (diffusers_plugin, "trainprove-diffusers"), (timm.load(), "trainprove-timm"), (DefaultTest(), "test")
    )
    return load_config(path, plugins)


def test_a_hub_id_missing_from_the_cache_offline_is_a_load_error(hub_cache, tmp_path):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, 'model = "nobody/no-such-model"')
    message = str(caught.value)
    assert message.startswith(
        f"{tmp_path / 'audit.toml'}: [generator] key 'model': 'nobody/no-such-model' is not in the local "
        "Hugging Face cache"
    )
    assert "HF_HUB_OFFLINE" in message and "hf download nobody/no-such-model" in message


def test_a_partial_download_is_a_load_error(hub_cache, tmp_path):
    _cached_pipeline(
        hub_cache,
        "org/sd",
        {"unet": ["config.json"], "vae": ["config.json", "model.safetensors"], "tokenizer": ["vocab.json"]},
    )
    with pytest.raises(
        ConfigError,
        match=r"\[generator\] key 'model': 'org/sd': the cached snapshot .* lacks "
        r"the weights of unet/ \(a partial download\)",
    ):
        _load(tmp_path, 'model = "org/sd"')


def test_a_complete_cached_pipeline_loads(hub_cache, tmp_path):
    _cached_pipeline(hub_cache, "org/sd", {"unet": ["config.json", "w.safetensors"], "tokenizer": ["v.json"]})
    config = _load(tmp_path, 'model = "org/sd"')
    assert config.generator.settings["model"] == "org/sd"
    with pytest.raises(ConfigError, match=r"key 'model': 'org/sd' at revision 'v2' is not in the local"):
        _load(tmp_path, 'model = "org/sd"\nrevision = "v2"')


def test_the_cascade_decoder_and_its_subfolders_are_checked(hub_cache, tmp_path):
    weights = ["config.json", "w.safetensors"]
    _cached_pipeline(
        hub_cache, "org/prior", {"prior_lite": weights, "text_encoder": weights}, ["prior", "text_encoder"]
    )
    # The prior is loaded from prior_lite/ (the default subfolder): the model is fine, the decoder is not.
    with pytest.raises(
        ConfigError, match=r"\[generator\] key 'decoder': 'stabilityai/stable-cascade' is not"
    ):
        _load(tmp_path, 'model = "org/prior"', use="stable-cascade")
    # With prior_subfolder = "" the pipeline's own prior/ is needed, and it is not there.
    with pytest.raises(ConfigError, match=r"key 'model': 'org/prior': the cached snapshot .* lacks prior/ "):
        _load(tmp_path, 'model = "org/prior"\nprior_subfolder = ""', use="stable-cascade")


def test_online_the_id_is_left_to_the_generator(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert (
        _load(tmp_path, 'model = "nobody/no-such-model"').generator.settings["model"]
        == "nobody/no-such-model"
    )


@pytest.mark.parametrize("value", ["a/b/c", "./missing-directory"])
def test_a_value_that_is_neither_directory_nor_hub_id_is_a_load_error(tmp_path, value):
    with pytest.raises(
        ConfigError, match=rf"\[generator\] key 'model': '{value}' is not a directory and not"
    ):
        _load(tmp_path, f'model = "{value}"')
