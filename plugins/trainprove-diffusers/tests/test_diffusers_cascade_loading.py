"""Stable Cascade's deprecated VQGAN module: saved pipelines load only with the fix in `cascade.py`.

The fix changes diffusers' module table for the whole process, so the before/after check runs in a fresh
interpreter.
"""

import json
import subprocess
import sys
import textwrap

import pytest
from trainprove_diffusers.generator import make_generator
from trainprove_diffusers.tiny import quick_settings

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    from diffusers import StableCascadeDecoderPipeline
    from trainprove_diffusers import tiny
    from trainprove_diffusers.cascade import enable_stable_cascade_loading

    root = sys.argv[1]
    _, decoder = tiny.stable_cascade()
    decoder.save_pretrained(root + "/current")          # as current diffusers saves it, unfixed
    spelled = json.load(open(root + "/current/model_index.json"))["vqgan"]
    try:
        StableCascadeDecoderPipeline.from_pretrained(root + "/current")
        before = "loaded"
    except ValueError as exc:
        before = str(exc)
    enable_stable_cascade_loading()
    enable_stable_cascade_loading()                      # idempotent
    StableCascadeDecoderPipeline.from_pretrained(root + "/current")
    _, decoder = tiny.stable_cascade()                   # a pipeline records its spelling when built
    decoder.save_pretrained(root + "/fixed")
    fixed = json.load(open(root + "/fixed/model_index.json"))["vqgan"]
    StableCascadeDecoderPipeline.from_pretrained(root + "/fixed")
    print(json.dumps({"spelled": spelled, "before": before, "fixed": fixed}))
    """
)


def test_saved_decoder_loads_only_with_the_fix(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["spelled"] == ["diffusers", "PaellaVQModel"]
    assert "has no class `PaellaVQModel`" in result["before"]
    assert result["fixed"] == ["wuerstchen", "PaellaVQModel"]  # the hub repositories' spelling


@pytest.mark.parametrize("spelling", [["wuerstchen", "PaellaVQModel"], ["diffusers", "PaellaVQModel"]])
def test_generator_loads_either_spelling(saved, tmp_path, spelling):
    import shutil

    decoder = tmp_path / "decoder"
    shutil.copytree(saved["stable-cascade"]["decoder"], decoder)
    index = json.loads((decoder / "model_index.json").read_text())
    index["vqgan"] = spelling
    (decoder / "model_index.json").write_text(json.dumps(index))
    g = make_generator(
        "stable-cascade", **quick_settings("stable-cascade", saved["stable-cascade"], decoder=str(decoder))
    )
    assert type(g.pipelines()[1].vqgan).__name__ == "PaellaVQModel"


def test_local_directory_without_the_lite_subfolder_uses_the_pipelines_own_unet(saved):
    g = make_generator("stable-cascade", **quick_settings("stable-cascade", saved["stable-cascade"]))
    prior, decoder = g.pipelines()
    assert prior.prior.config.block_out_channels == [32, 32]
    assert decoder.decoder.config.block_out_channels == [8, 16]
    assert g.identity["sampling"]["prior_subfolder"] == "prior_lite"
