import json
import subprocess
import sys

from trainprove_diffusers.backends import BACKENDS

from trainprove_core.listing import describe
from trainprove_core.plugins import load_plugins

PAPER = {  # generator: (hub id, steps, guidance, resolution)
    "stable-diffusion-v1-4": ("CompVis/stable-diffusion-v1-4", 50, 7.5, 512),
    "latent-consistency": ("SimianLuo/LCM_Dreamshaper_v7", 4, 8.5, 512),
    "pixart-alpha": ("PixArt-alpha/PixArt-XL-2-512x512", 20, 4.5, 512),
    "stable-cascade": ("stabilityai/stable-cascade-prior", 20, 4.0, 1024),
}


def test_installed_plugin_registers_the_four_generators_with_the_papers_defaults():
    plugins = load_plugins(strict=True)
    rows = {r["name"]: r for r in describe(plugins) if r["distribution"] == "trainprove-diffusers"}
    assert set(rows) == set(PAPER)
    for name, (model, steps, guidance, resolution) in PAPER.items():
        assert rows[name]["kind"] == "generator"
        options = {o.name: o for o in plugins.get("generator", name).spec.options}
        assert (
            options["model"].default,
            options["steps"].default,
            options["guidance"].default,
            options["resolution"].default,
        ) == (model, steps, guidance, resolution)
        assert options["model"].type == "path-or-id"
        assert {"revision", "device", "dtype", "batch_size", "cpu_offload", "compile"} <= set(options)
    cascade = {o.name: o.default for o in BACKENDS["stable-cascade"].options()}
    assert (cascade["prior_subfolder"], cascade["decoder"], cascade["decoder_subfolder"]) == (
        "prior_lite",
        "stabilityai/stable-cascade",
        "decoder_lite",
    )
    assert (cascade["decoder_steps"], cascade["decoder_guidance"]) == (10, 0.0)


def test_importing_the_plugin_imports_neither_torch_nor_diffusers():
    code = (
        "import sys, json, trainprove_diffusers.plugin as p; "
        "print(json.dumps([m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
