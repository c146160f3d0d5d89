"""Start-up that costs nothing: an audit whose every answer and verdict is in the store imports none of
torch, timm, diffusers or onnxruntime (issue 25; the import of torch and timm alone took 3.4 s quiet and a
minute at a load of 20). Checked on the modules the process imported (dumped at exit), not on a clock."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "timm", "diffusers", "onnxruntime", "torchvision", "transformers")

# `trainprove ARGS...`, with the test kit's generators, writing the names of every module imported to the
# file named by the first argument when the process exits.
RUN = """
import atexit, json, sys
dump = sys.argv.pop(1)
atexit.register(lambda: open(dump, "w").write(json.dumps(sorted(sys.modules))))
from trainprove_core.cli import cli
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import load_plugins

plugins = load_plugins()
plugins.register(GlyphPlugin(), "glyphs", "tests")
cli(args=sys.argv[1:], obj={"plugins": plugins}, prog_name="trainprove")
"""


def audit(tmp_path, dump, name):
    out = tmp_path / name
    command = [sys.executable, "-c", RUN, str(dump), "audit", str(tmp_path / "audit.toml"), "--out", str(out)]
    command += ["--store", str(tmp_path / "store"), "--no-html"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads((out / "report.json").read_text()), set(json.loads(dump.read_text()))


@pytest.mark.slow
def test_a_fully_cached_audit_imports_no_ml_framework(suspect_pool, tmp_path):
    same, other = suspect_pool["same"], suspect_pool["other"]
    (tmp_path / "audit.toml").write_text(
        textwrap.dedent(
            f"""
            [task]
            classes = ["disc", "ring", "hbar"]
            image_size = 16
            [generator]
            use = "shapes"
            [shadow]
            prompt = "a {{label}}"
            per_class = 20
            trainer = "pixel-logistic"
            [validation]
            prompt = "a photo of a {{label}}"
            per_class = 20
            batch_size = 10
            [[suspect]]
            name = "named-arch"
            use = "timm"
            checkpoint = "{same}"
            arch = "test_resnet"
            [[suspect]]
            name = "arch-from-config"
            use = "timm"
            checkpoint = "{other}"
            [[test]]
            use = "trainprove"
            [[test]]
            use = "welch"
            [[test]]
            use = "accuracy-threshold"
            """
        )
    )
    cold, cold_modules = audit(tmp_path, tmp_path / "cold.json", "cold")
    assert cold["counts"]["models_loaded"] >= 2 and cold["counts"]["queries_sent"] > 0
    assert {"torch", "timm"} <= cold_modules  # the check below would see an import
    assert cold["counts"]["threads_inference"] >= 1  # the accounting says what the suspects ran on

    warm, modules = audit(tmp_path, tmp_path / "warm.json", "warm")
    counts = warm["counts"]
    assert counts["models_loaded"] == 0 and counts["queries_sent"] == 0 and counts["verdicts_made"] == 0
    assert warm["verdicts"] == cold["verdicts"]
    assert counts["threads_inference"] == 0  # nothing ran
    imported = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not imported, imported
