"""An embedded torch generator is light until its first image: opening it (what an audit whose images are
all in the store does, to learn the store keys) imports neither torch nor diffusers, and its identity is
the same as once torch is loaded (so every store key stays what it was)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

TORCH_GENERATORS = ["digits-ddpm", "digits-cfg", "digits-vae", "digits-gan", "fashion-ddpm", "fashion-gan"]

OPEN = """
import json, sys
from trainprove_core.config import validate_table
from trainprove_core.plugins import load_plugins
spec = load_plugins().generator(sys.argv[1]).spec
gen = spec.factory(validate_table({}, spec.options, source="<test>", where="generator"))
heavy = sorted(m for m in ("torch", "diffusers", "timm") if m in sys.modules)
print(json.dumps({"identity": gen.identity, "heavy": heavy}))
"""


def opened(name: str) -> dict:
    result = subprocess.run([sys.executable, "-c", OPEN, name], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", TORCH_GENERATORS)
def test_opening_a_generator_imports_no_ml_framework_and_names_the_same_identity(name):
    import torch

    from trainprove_core.config import validate_table
    from trainprove_core.plugins import load_plugins

    light = opened(name)
    assert light["heavy"] == []
    spec = load_plugins().generator(name).spec
    loaded = spec.factory(validate_table({}, spec.options, source="<test>", where="generator"))
    assert light["identity"] == json.loads(json.dumps(loaded.identity))
    assert light["identity"]["torch"] == torch.__version__
