"""bench/gpu_check.py, the GPU check of issue 25, is ready to run: here on the CPU at tiny size (no GPU in
CI), every step of it: a backend against plain diffusers with their pixel difference, and one audit end to
end through `trainprove audit` with its timings per phase."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_at_tiny_size_on_the_cpu(tmp_path):
    command = [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--tiny", "--out", str(tmp_path)]
    command += ["--generators", "latent-consistency"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    (backend,) = summary["steps"]["generators"]["backends"]
    assert backend["generator"] == "latent-consistency" and backend["plain_img_s"] > 0
    assert backend["trainprove_img_s"] > 0 and isinstance(backend["equal_output"], bool)
    audit = summary["steps"]["audit"]
    assert audit["errors"] == [] and len(audit["verdicts"]) == 2  # two suspects, one test
    assert audit["counts"]["images_made"] == 10 * (3 + 5) and audit["counts"]["models_trained"] == 1
    assert {"generation", "training", "queries", "decisions"} <= set(audit["timings"])
    assert "| latent-consistency |" in (tmp_path / "summary.md").read_text()
