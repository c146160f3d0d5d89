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
    assert by_name[("test", "trainprove")]["distribution"] == "trainprove-paper"
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
    from core_test_helpers import base_audit

    from trainprove_core.audit import AuditRun, preview_sheet
    from trainprove_core.config import config_from_dict
    from trainprove_core.glyphs import GlyphPlugin
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store

    plugins = load_plugins()
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    doc = base_audit(suspect=[{"name": "s", "use": "timm", "checkpoint": "x"}])
    config = config_from_dict(doc, plugins)
    image_set = AuditRun(config, plugins, Store(tmp_path / "s"), False).shadow_set
    preview_sheet(image_set, config.task, tmp_path / "sheet.png")
    from PIL import Image

    # A row per class, 8 images of 64 px with 4 px gaps, and the class names in a column on the left.
    label = 8 + 7 * len("hbar")
    assert Image.open(tmp_path / "sheet.png").size == (label + 8 * 68 + 4, 3 * 68 + 4)


INTERRUPTED = """
import os, signal, sys
from trainprove_core import hookimpl
from trainprove_core.cli import cli
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import load_plugins


class CtrlC:  # a real SIGINT, at a known moment: once the shadow set is made, mid-audit
    @hookimpl
    def trainprove_after_generate(self, role, image_set):
        if role == "shadow":
            os.kill(os.getpid(), signal.SIGINT)


# Ctrl-C raises KeyboardInterrupt, as in a terminal, even where this process was started with SIGINT
# ignored (a child inherits that; in a full test run something before this test leaves it so)
signal.signal(signal.SIGINT, signal.default_int_handler)
plugins = load_plugins()
plugins.register(GlyphPlugin(), "glyphs", "tests")
plugins.register(CtrlC(), "ctrl-c", "tests")
sys.argv = ["trainprove", "audit", {audit!r}, "--out", {out!r}, "--store", {store!r}]
cli(obj={{"plugins": plugins}}, prog_name="trainprove")
"""


def test_ctrl_c_says_what_is_kept_and_exits_130(tmp_path, suspect_pool):
    """Ctrl-C mid-audit: a sentence that the work is kept and how to resume, exit code 130 (not click's
    'Aborted!' and 1, which the docs give for a suspect that could not be queried)."""
    audit = tmp_path / "audit.toml"
    lines = [
        "[task]",
        'classes = ["disc", "ring", "hbar"]',
        "image_size = 16",
        "[generator]",
        'use = "shapes"',
        "batch_size = 4",
        "[shadow]",
        'prompt = "a {label}"',
        "per_class = 60",
        "[validation]",
        'prompt = "a photo of a {label}"',
        "per_class = 10",
        "batch_size = 5",
        "[[suspect]]",
        'name = "s"',
        'use = "timm"',
        f'checkpoint = "{suspect_pool["same"]}"',
    ]
    audit.write_text("\n".join(lines) + "\n")
    script = INTERRUPTED.format(
        audit=str(audit),
        out=str(tmp_path / "out"),
        store=str(tmp_path / "st"),
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    stderr = proc.communicate()[1]
    assert proc.returncode == 130, stderr
    assert "interrupted: every finished image chunk" in stderr and "run the same command again" in stderr
    assert "Aborted!" not in stderr
