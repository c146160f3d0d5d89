from __future__ import annotations

import json
import subprocess
import sys

from core_test_helpers import run_cli as run


def test_help_answers_without_importing_ml_libraries():
    code = (
        "import sys\n"
        "from trainprove_core import cli\n"
        "sys.argv = ['trainprove', '--help']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'timm', 'diffusers', 'scipy', 'sklearn', 'onnxruntime', 'numpy') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "Usage: trainprove" in out and "audit" in out and "plugins" in out
    assert "HEAVY []" in out


def test_plugins_json_lists_kinds_distributions_and_versions():
    result = run("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_name = {(r["kind"], r["name"]): r for r in rows}
    assert by_name[("test", "trainprove")]["distribution"] == "trainprove-tests"
    assert by_name[("suspect", "timm")]["version"] == "0.1.0"
    assert {"name", "kind", "distribution", "version"} <= set(rows[0])


def test_bad_audit_file_is_one_clean_error(tmp_path):
    bad = tmp_path / "audit.toml"
    bad.write_text(
        '[task]\nclasses = ["a", "b"]\nimage_size = 16\n[generator]\nuse = "no-such-generator"\n'
        '[shadow]\nprompt = "a {label}"\nper_class = 1\n[validation]\nprompt = "x {label}"\n'
        'per_class = 1\nbatch_size = 1\n[[suspect]]\nname = "s"\nuse = "timm"\ncheckpoint = "m"\n'
    )
    result = run("audit", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: {bad}: [generator] key 'use': unknown generator 'no-such-generator'" in result.stderr


def test_preview_sheet_has_a_row_per_class(tmp_path):
    import shapes_plugin
    from core_test_helpers import base_audit

    from trainprove_core.audit import Workspace, preview_sheet
    from trainprove_core.config import config_from_dict
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store

    plugins = load_plugins()
    plugins.register(shapes_plugin, "shapes", "tests")
    doc = base_audit(suspect=[{"name": "s", "use": "timm", "checkpoint": "x"}])
    config = config_from_dict(doc, plugins)
    ws = Workspace(
        config.task, plugins, Store(tmp_path / "s"), plugins.get("executor", "local").spec.factory({}), False
    )
    image_set = ws.image_set("shadow", ws.generator(config.generator), config.shadow)
    preview_sheet(image_set, config.task, tmp_path / "sheet.png")
    from PIL import Image

    assert Image.open(tmp_path / "sheet.png").size == (8 * 64, 3 * 64)
