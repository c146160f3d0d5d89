"""The GPU speed-ups without the GPU: channels-last and fused projections must not change the images
(compilation is exercised by bench/generators.py on a GPU)."""

import numpy as np
import pytest
from trainprove_diffusers import tiny
from trainprove_diffusers.generator import make_generator
from trainprove_diffusers.speed import speed_up
from trainprove_diffusers.tiny import quick_settings

from trainprove_core.records import GenerationRequest

REQUESTS = [GenerationRequest(p, 0, p, s) for p, s in [("a cat", 1), ("a dog", 2), ("a cat", 3)]]


@pytest.mark.parametrize("name", list(tiny.TINY_RESOLUTION))
def test_layout_and_fused_projections_keep_the_images(saved, name):
    g = make_generator(name, **quick_settings(name, saved[name]))
    before = g.generate(REQUESTS)
    pipes = g.pipelines()
    applied = speed_up(g.backend.conv_nets(pipes), g.backend.compiled_modules(pipes), compile=False)
    assert applied[0] == "channels_last"
    if name != "stable-cascade":  # diffusers offers no fused projections for Stable Cascade's UNets
        assert "fused_qkv" in applied
    after = g.generate(REQUESTS)
    assert np.abs(after.astype(int) - before).max() <= 2
