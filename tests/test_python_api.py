"""docs/python-api.md runs as written (its Python blocks, in order, in a fresh process and folder), the
package `trainprove` stays light, and `trainprove audit --json` prints the verdicts alone on stdout."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "python-api.md"

pytest.importorskip("trainprove_embedded", reason="the embedded generators are not installed")
pytest.importorskip("trainprove_timm", reason="the timm plugin is not installed")


def quiet_env(tmp_path: Path) -> dict[str, str]:
    """One thread per library (the machine is shared), the store and caches inside the test's folder."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TRAINPROVE_STORE": str(tmp_path / "default-store"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The page's Python blocks run in order, as one notebook would: the folder and what they printed."""
    folder = tmp_path_factory.mktemp("notebook")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 3
    (folder / "notebook.py").write_text("\n".join(blocks), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "notebook.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
        env=quiet_env(folder),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, run.stdout


@pytest.mark.slow
def test_the_documented_example_runs_and_clears_a_model_that_never_saw_a_digit(notebook):
    folder, out = notebook
    assert re.search(r"^vendor trainprove not-trained-on-generator p = ", out, flags=re.M), out
    assert re.search(r"^vendor accuracy 0\.\d+", out, flags=re.M), out
    assert "unknown key 'batch_sise'" in out and "[validation]" in out
    assert (folder / "runs" / "notebook" / "report.html").is_file()


@pytest.mark.slow
def test_audit_json_prints_the_verdicts_alone_on_stdout(notebook):
    folder, _ = notebook
    trainprove = Path(sys.executable).with_name("trainprove")
    audit = (folder / "runs" / "notebook" / "report.json").read_text(encoding="utf-8")
    document = json.loads(audit)["manifest"]["audit"]
    (folder / "audit.toml").write_text(to_toml(document), encoding="utf-8")
    run = subprocess.run(
        [str(trainprove), "audit", "audit.toml", "--out", "runs/cli", "--store", "runs/store", "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        env=quiet_env(folder),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    printed = json.loads(run.stdout)  # stdout is the JSON document and nothing else
    assert printed["report"] == "runs/cli/report.json" and printed["errors"] == []
    (verdict,) = printed["verdicts"]
    assert verdict["suspect"] == "vendor" and verdict["decision"] == "not-trained-on-generator"
    assert set(verdict) == {
        "suspect",
        "test",
        "decision",
        "p_value",
        "alpha",
        "statistic",
        "threshold",
        "explanation",
    }
    assert "report: runs/cli/report.html" in run.stderr
    bad = subprocess.run(
        [str(trainprove), "audit", "missing.toml", "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=quiet_env(folder),
    )
    assert bad.returncode == 2 and bad.stdout == "" and "missing.toml" in bad.stderr


def to_toml(document: dict) -> str:
    """The manifest's audit document (tables of scalars and lists, arrays of tables) as TOML."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in document.items() if not isinstance(v, dict | list)]
    for name, value in document.items():
        tables = [value] if isinstance(value, dict) else value if isinstance(value, list) else []
        for table in tables:
            if not isinstance(table, dict):
                continue
            lines.append(f"[{name}]" if isinstance(value, dict) else f"[[{name}]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def test_importing_trainprove_imports_nothing_heavy_until_an_audit_is_asked_for():
    code = (
        "import sys, trainprove\n"
        "print(sorted(m for m in ('numpy', 'torch', 'trainprove_core.engine') if m in sys.modules))\n"
        "print(trainprove.audit.__module__, trainprove.AuditReport.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split("\n")[:2] == ["[]", "trainprove_core.api trainprove_core.engine.report"], (
        out.stderr
    )


def test_load_report_names_a_folder_without_a_report(tmp_path):
    import trainprove
    from trainprove_core import InputError

    with pytest.raises(InputError, match="report.json: cannot be read"):
        trainprove.load_report(tmp_path)
    (tmp_path / "report.json").write_text('{"verdicts": []}')
    with pytest.raises(InputError, match="not a trainprove report.json"):
        trainprove.load_report(tmp_path / "report.json")
