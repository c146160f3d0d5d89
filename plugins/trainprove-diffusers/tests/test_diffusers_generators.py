import numpy as np
import pytest
from trainprove_diffusers import tiny
from trainprove_diffusers.generator import make_generator
from trainprove_diffusers.tiny import quick_settings

from trainprove_core.records import GenerationRequest, Generator
from trainprove_core.store import Store, derive_seed


def requests(prompts, seed=7):
    return [
        GenerationRequest(p, i % 3, p.split()[-1], derive_seed(seed, p, i)) for i, p in enumerate(prompts)
    ]


PROMPTS = ["a cat", "a dog", "a cat", "a bird", "a cat"]


@pytest.fixture(scope="module")
def generators(saved):
    return {name: make_generator(name, **quick_settings(name, saved[name])) for name in tiny.TINY_RESOLUTION}


@pytest.mark.parametrize("name", list(tiny.TINY_RESOLUTION))
def test_images_are_uint8_rgb_at_native_size_and_fixed_by_their_seeds(generators, name):
    g = generators[name]
    assert isinstance(g, Generator)
    size = tiny.TINY_RESOLUTION[name]
    assert g.native_size == size
    reqs = requests(PROMPTS)
    images = g.generate(reqs)
    assert images.shape == (5, size, size, 3) and images.dtype == np.uint8
    assert images.std() > 10  # random weights make noise, not a constant image

    again = g.generate(reqs)
    np.testing.assert_array_equal(images, again)

    # Image i depends on request i alone: made alone, or next to other prompts and seeds, it is the same
    # up to the rounding of batched kernels.
    alone = g.generate(reqs[3:4])
    assert np.abs(alone[0].astype(int) - images[3]).max() <= 2
    mixed = g.generate([requests(["a frog"], seed=99)[0], reqs[3]])
    assert np.abs(mixed[1].astype(int) - images[3]).max() <= 2

    other_seeds = g.generate(requests(PROMPTS, seed=8))
    assert np.abs(other_seeds.astype(int) - images).mean() > 5


def test_an_interrupted_set_resumes_to_the_same_images(generators, tmp_path):
    g = generators["stable-diffusion-v1-4"]
    reqs = requests(["a cat", "a dog", "a bird", "a frog", "a ship", "a deer", "a cat"])
    chunks = [reqs[i : i + g.batch_size] for i in range(0, len(reqs), g.batch_size)]
    identity = {"generator": g.identity, "set": "test"}

    def run_until(stop):
        def run(pending):
            for i in pending:
                if i == stop:
                    raise KeyboardInterrupt
                yield i, {"images": g.generate(chunks[i])}

        return run

    store = Store(tmp_path / "store")
    with pytest.raises(KeyboardInterrupt):
        store.chunked("image-sets", identity, chunks, run_until(stop=2))
    assert not store.has("image-sets", identity)
    assert store.cached_chunks("image-sets", identity, len(chunks)) == [0, 1]
    resumed = store.chunked("image-sets", identity, chunks, run_until(stop=None))["images"]
    whole = Store(tmp_path / "fresh").chunked("image-sets", identity, chunks, run_until(stop=None))["images"]
    np.testing.assert_array_equal(resumed, whole)
    assert resumed.shape[0] == len(reqs)


def test_identity_follows_what_changes_the_images(saved, generators):
    name = "latent-consistency"
    base = generators[name].identity
    assert base["generator"] == name and "diffusers" in base and base["dtype"] == "fp32"
    assert set(base["model"]["model"]) == {"directory_sha256"}
    for change in ({"steps": 3}, {"guidance": 2.0}, {"dtype": "bf16"}, {"resolution": 48}):
        assert make_generator(name, **quick_settings(name, saved[name], **change)).identity != base, change
    for same in ({"batch_size": 7}, {"device": "cpu"}, {"compile": False}):
        assert make_generator(name, **quick_settings(name, saved[name], **same)).identity == base, same


def test_identity_of_a_directory_is_a_hash_of_its_files(saved, tmp_path):
    import shutil

    copy = tmp_path / "lcm"
    shutil.copytree(saved["latent-consistency"]["model"], copy)
    first = make_generator("latent-consistency", model=str(copy)).identity["model"]
    assert make_generator("latent-consistency", model=str(copy)).identity["model"] == first
    scheduler = copy / "scheduler" / "scheduler_config.json"
    scheduler.write_text(
        scheduler.read_text().replace('"original_inference_steps": 50', '"original_inference_steps": 40')
    )
    assert make_generator("latent-consistency", model=str(copy)).identity["model"] != first


def test_variant_shares_the_model_and_changes_identity_and_images(generators):
    g = generators["stable-diffusion-v1-4"]
    reqs = requests(["a cat", "a dog"])
    base = g.generate(reqs)
    low = g.variant(guidance=1.0)
    assert low.pipelines() is g.pipelines()
    assert low.identity["sampling"]["guidance"] == 1.0 and g.identity["sampling"]["guidance"] == 7.5
    assert np.abs(low.generate(reqs).astype(int) - base).mean() > 1
    with pytest.raises(ValueError, match="batch_size"):
        g.variant(batch_size=2)


def test_text_is_encoded_once_per_distinct_prompt(saved):
    g = make_generator("pixart-alpha", **quick_settings("pixart-alpha", saved["pixart-alpha"]))
    backend_encode = g.backend.encode
    seen = []

    def counting_encode(pipes, prompts, settings):
        seen.append(list(prompts))
        return backend_encode(pipes, prompts, settings)

    g.backend = type(g.backend)()
    g.backend.encode = counting_encode
    g.generate(requests(PROMPTS))
    assert seen == [["a cat", "a dog"], ["a bird"]]
