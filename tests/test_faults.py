"""Issue 23: nothing lost and nothing leaked under the ways a shared machine fails: numbers a user types
(nan, inf), a store shared between users, a full or read-only disk, and paths a user can type."""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from trainprove_core.cli import cli
from trainprove_core.store import Store


def make_entries(store: Store, n: int = 3) -> list:
    for i in range(n):
        store.chunked("sets", {"entry": i}, [0], lambda pending: ((j, {"x": np.arange(3)}) for j in pending))
    return [store.location("sets", {"entry": i}) for i in range(n)]


def invoke(plugins, *args: str):
    plugins.add_commands(cli) if "plan" not in cli.commands else None
    return CliRunner().invoke(cli, list(args), obj={"plugins": plugins})


# ---- numbers a user types ------------------------------------------------------------------------------


@pytest.mark.parametrize("days", ["nan", "NaN", "inf", "-inf", "1e999", "-1"])
def test_gc_refuses_non_finite_days_and_removes_nothing(tmp_path, plugins, days):
    store = Store(tmp_path / "store", notify=lambda m: None)
    entries = make_entries(store)
    result = invoke(plugins, "store", "gc", "--store", str(store.root), "--unused-days", days)
    assert result.exit_code == 2 and "--unused-days" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert all(e.exists() for e in entries)


def test_gc_keeps_entries_read_within_the_last_hour_unless_told(tmp_path, plugins):
    store = Store(tmp_path / "store", notify=lambda m: None)
    recent, old, ancient = make_entries(store)
    now = time.time()
    os.utime(recent / "meta.json", (now - 600, now - 600))  # read ten minutes ago
    os.utime(old / "meta.json", (now - 7200, now - 7200))  # two hours ago
    os.utime(ancient / "meta.json", (1e9, 1e9))
    kept = invoke(plugins, "store", "gc", "--store", str(store.root), "--unused-days", "0")
    assert kept.exit_code == 0, kept.output
    assert "removed 2 unused" in kept.output and "kept 1 entries read within the last hour" in kept.output
    assert recent.exists() and not old.exists() and not ancient.exists()
    told = invoke(
        plugins, "store", "gc", "--store", str(store.root), "--unused-days", "0", "--include-recent"
    )
    assert told.exit_code == 0 and "removed 1 unused" in told.output and not recent.exists()
    with pytest.raises(ValueError, match="finite"):
        store.remove_unused(float("nan"))


NUMERIC_OPTIONS = [
    ("sample", "shapes", "--classes", "a,b", "--out", "{out}", "--per-class", "{bad}"),
    ("sample", "shapes", "--classes", "a,b", "--out", "{out}", "--per-class", "1", "--seed", "{bad}"),
    ("sample", "shapes", "--classes", "a,b", "--out", "{out}", "--per-class", "1", "--image-size", "{bad}"),
    ("store", "gc", "--store", "{out}", "--unused-days", "{bad}"),
    ("plan", "{audit}", "--drop", "{bad}"),
    ("plan", "{audit}", "--power", "{bad}"),
    ("plan", "{audit}", "--alpha", "{bad}"),
]


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "0", "-1", "1e999"])
def test_every_numeric_option_refuses_what_is_not_a_number_in_range(tmp_path, plugins, bad):
    (tmp_path / "store").mkdir()
    audit = tmp_path / "audit.toml"
    audit.write_text("")
    for argv in NUMERIC_OPTIONS:
        if bad == "0" and argv[-2] in ("--seed", "--unused-days"):
            continue  # 0 is a valid seed and a valid number of days
        args = [a.format(out=tmp_path / "store", bad=bad, audit=audit) for a in argv]
        result = invoke(plugins, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Invalid value for" in result.output and argv[-2] in result.output, (args, result.output)
        assert not (tmp_path / "store" / "sample").exists()


# ---- a store shared between users ----------------------------------------------------------------------

AUDIT = """
import json, sys
from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.errors import TrainproveError
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import load_plugins
from trainprove_core.store import Store

plugins = load_plugins()
plugins.register(GlyphPlugin(), "glyphs", "tests")
doc, out, store = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
try:
    result = run_audit(config_from_dict(doc, plugins), plugins, out, Store(store), False, html=False)
except TrainproveError as exc:  # as the CLI says it
    sys.exit(f"error: {exc}")
print(json.dumps([[v["suspect"], v["test"], v["decision"]] for v in result.report["verdicts"]]))
"""


def as_nobody(*argv: str, env: dict | None = None):
    """Run `argv` as user nobody (group nogroup), as another user of a shared machine would."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running as another user needs root and setpriv (util-linux)")
    home = {"HOME": "/tmp", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if not nobody_can_run_this_checkout(tuple(command)):
        pytest.skip(
            f"user nobody cannot run {sys.executable} with this checkout (a folder on the way is closed to "
            "other users, e.g. a clone under a 0700 folder); clone where other users may read to run it"
        )
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, timeout=600, env={**home, **(env or {})}
    )


@functools.cache
def nobody_can_run_this_checkout(command: tuple[str, ...]) -> bool:
    """Whether user nobody can start this venv's Python and import the core from this checkout."""
    import subprocess

    probe = [*command, sys.executable, "-c", "import trainprove_core"]
    return subprocess.run(probe, capture_output=True, timeout=120, env={"HOME": "/tmp"}).returncode == 0


@pytest.fixture
def shared_dir():
    """A folder every user may enter (pytest's tmp_path is root's own, 0700)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="trainprove-shared-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def a_suspect(plugins, folder: Path) -> list[dict]:
    """A pixel-logistic suspect trained on another source, readable by every user."""
    import subprocess

    from trainprove_core.audit import Workspace
    from trainprove_core.config import ImageSetConfig
    from trainprove_core.task import Task

    pool = Workspace.open(Task(("disc", "ring", "hbar"), 16), plugins, Store(folder), show_progress=False)
    other = pool.generator(pool.plugin_table("generator", "shapes", {"style": 1.0}))
    images = pool.image_set("suspect", other, ImageSetConfig("an image of a {label}", 10, seed=7))
    model_dir, _, _ = pool.trained_model(pool.plugin_table("shadow-trainer", "pixel-logistic", {}), images)
    subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
    return [{"name": "other", "use": "pixel-logistic", "model_dir": str(model_dir)}]


def small_audit(suspect: list[dict], seed: int = 0) -> dict:
    return {
        "task": {"classes": ["disc", "ring", "hbar"], "image_size": 16},
        "generator": {"use": "shapes"},
        "shadow": {"prompt": "a {label}", "per_class": 10, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 10, "batch_size": 10, "seed": seed},
        "suspect": suspect,
    }


def run_audit_as(user_is_nobody: bool, doc: dict, out: Path, store: Path, env: dict | None = None):
    import json
    import subprocess
    import sys

    argv = [sys.executable, "-c", AUDIT, json.dumps(doc), str(out), str(store)]
    if user_is_nobody:
        return as_nobody(*argv, env=env)
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )


def test_another_user_reads_entries_made_under_the_umask_and_never_calls_them_damaged(shared_dir):
    """Temporary files are 0600 and folders 0700 when made: the mode the umask allows is given before
    the rename, so another user's `store verify` finds every entry intact."""
    import sys

    store = Store(shared_dir / "store", notify=lambda m: None)
    entries = make_entries(store)
    for entry in entries:
        assert entry.stat().st_mode & 0o777 == 0o755
        assert {p.stat().st_mode & 0o777 for p in entry.iterdir()} == {0o644}
    trainprove = str(Path(sys.executable).parent / "trainprove")
    seen = as_nobody(trainprove, "store", "verify", "--store", str(store.root))
    assert seen.returncode == 0 and "3 entries checked" in seen.stdout and "0 damaged" in seen.stdout, seen
    assert "Traceback" not in seen.stderr
    # A damaged entry that this user may not move: named, left where it is, said why.
    (entries[0] / "data.npz").write_bytes(b"damaged")
    repair = as_nobody(trainprove, "store", "verify", "--repair", "--store", str(store.root))
    assert repair.returncode == 1 and "Traceback" not in repair.stderr, repair
    assert "1 damaged" in repair.stdout and "left where it is: " in repair.stdout, repair.stdout
    assert "permission denied (" in repair.stdout and "belongs to user root" in repair.stdout
    assert (entries[0] / "data.npz").read_bytes() == b"damaged" and not (store.root / "quarantine").exists()


def test_a_group_shared_store_is_used_by_another_user_and_a_permission_error_is_never_damage(
    shared_dir, plugins
):
    import grp
    import json
    import sys

    suspect = a_suspect(plugins, shared_dir / "pool")
    nogroup = grp.getgrnam("nogroup").gr_gid
    root = shared_dir / "store"
    root.mkdir()
    os.chown(root, 0, nogroup)
    root.chmod(0o2775)
    group = {"TRAINPROVE_STORE_MODE": "664"}
    first = run_audit_as(False, small_audit(suspect), shared_dir / "out-root", root, group)
    assert first.returncode == 0, first.stderr[-3000:]
    made = [p for p in root.rglob("*") if "locks" not in p.parts]
    assert all(p.stat().st_gid == nogroup for p in made)
    assert all(p.stat().st_mode & 0o060 == 0o060 for p in made)  # group: read and write

    # Another user: the same audit finds everything (nothing quarantined, nothing built again), and
    # one with another validation set builds what it needs in the shared store.
    again = run_audit_as(True, small_audit(suspect), shared_dir / "out-nobody", root, group)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout) == json.loads(first.stdout)
    other = run_audit_as(True, small_audit(suspect, seed=5), shared_dir / "out-nobody-5", root, group)
    assert other.returncode == 0, other.stderr[-3000:]
    log = (root / "store.log").read_text()
    assert " quarantined " not in log and not (root / "quarantine").exists()
    assert Store(root).verify() == (len(list(Store(root).entries())), [])  # root reads what nobody made

    # An entry this user may not read is not damaged: named with its owner, never quarantined.
    shadow = next((root / "image-sets").iterdir())
    (shadow / "data.npz").chmod(0o600)
    trainprove = str(Path(sys.executable).parent / "trainprove")
    for repair in ([], ["--repair"]):
        seen = as_nobody(trainprove, "store", "verify", "--store", str(root), *repair, env=group)
        assert seen.returncode == 1 and "Traceback" not in seen.stderr, seen
        assert "0 damaged, 1 not readable by this user" in seen.stdout, seen.stdout
        assert "belongs to user root" in seen.stdout and "chmod -R g+rwX" in seen.stdout
        assert "--repair" not in seen.stdout.split("not readable")[0]
    denied = run_audit_as(True, small_audit(suspect, seed=6), shared_dir / "out-nobody-6", root, group)
    assert (
        denied.returncode != 0 and "permission denied" in denied.stderr and "Traceback" not in denied.stderr
    )
    assert (shadow / "data.npz").exists() and not (root / "quarantine").exists()
    assert " quarantined " not in (root / "store.log").read_text()


# ---- a full disk, a read-only folder ---------------------------------------------------------------------


def in_namespace(shell: str):
    """Run `shell` in a mount namespace of its own (root: a tmpfs mounted there is gone afterwards)."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a small or read-only tmpfs needs root and unshare (util-linux)")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace: {probe.stderr.decode().strip()}")
    return subprocess.run(["unshare", "-m", "sh", "-c", shell], capture_output=True, text=True, timeout=600)


FULL = """
import json, sys
from pathlib import Path
import numpy as np
from trainprove_core.errors import TrainproveError
from trainprove_core.store import Store

root, what = Path(sys.argv[1]), sys.argv[2]
store = Store(root / "store", notify=lambda m: None)
try:
    if what == "chunks":
        store.chunked("sets", {"s": 1}, list(range(8)),
                      lambda pending: ((i, {"x": np.full(40_000, i, np.uint8)}) for i in pending))
    elif what == "model":
        from safetensors.numpy import save_file
        weights = {"w": np.zeros(200_000, np.float32)}
        store.directory("models", {"m": 1}, lambda tmp: save_file(weights, str(tmp / "model.safetensors")))
    elif what == "report":
        from trainprove_core.report import write_report
        report = {"verdicts": [], "suspects": [], "warnings": [], "errors": [], "padding": "x" * 300_000}
        write_report(report, root / "out", html=True)
except TrainproveError as exc:
    kept = sorted(str(p.relative_to(root)) for p in root.rglob("*.npz"))
    print(json.dumps({"error": str(exc), "kept": kept}))
    sys.exit(2)
print(json.dumps({"error": None}))
"""


@pytest.mark.parametrize("what", ["chunks", "model", "report"])
def test_a_full_disk_is_one_error_naming_the_path_and_keeps_what_was_finished(what, shared_dir):
    import json
    import shlex
    import sys

    script = shared_dir / "full.py"
    script.write_text(FULL)
    tmpfs = shared_dir / "small"
    tmpfs.mkdir()
    result = in_namespace(
        f"mount -t tmpfs -o size=160k tmpfs {tmpfs} && {shlex.quote(sys.executable)} {script} {tmpfs} {what}"
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, (result.stdout, result.stderr[-2000:])
    said = json.loads(result.stdout)
    assert "cannot write: no space left on the device (ENOSPC)" in said["error"], said
    assert str(tmpfs) in said["error"]
    if what == "chunks":  # the chunks saved before the disk filled are kept, to resume from
        assert said["kept"] and "kept in the store" in said["error"]
        assert ".partial-8/000000.npz" in said["error"] or "partial-8" in said["error"]
    if what == "report":  # report.json goes first: the page is what a full disk loses
        assert said["error"].startswith(str(tmpfs / "out" / "report.json")), said


def test_output_into_a_read_only_folder_is_refused_before_any_work(shared_dir):
    import shlex
    import sys

    ro = shared_dir / "ro"
    ro.mkdir()
    store = shared_dir / "store"
    trainprove = shlex.quote(str(Path(sys.executable).parent / "trainprove"))
    commands = [
        f"{trainprove} sample shapes --classes a,b --per-class 1 --out {ro}/x --store {store} --no-progress",
        f"{trainprove} sample shapes --classes a,b --per-class 1 --out {ro} --store {store} --no-progress",
        f"{trainprove} report {ro}",
    ]
    result = in_namespace(
        f"mount -t tmpfs -o ro,size=64k tmpfs {ro} && " + " ; ".join(f"{c} ; echo rc=$?" for c in commands)
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.count("rc=2") == len(commands), (result.stdout, result.stderr)
    assert result.stderr.count("nothing can be written in") == len(commands), result.stderr
    assert "Read-only file system" in result.stderr
    assert not store.exists()  # refused before any work: no image was made


# ---- paths and values a user can type -----------------------------------------------------------------


def test_paths_a_user_can_type_are_refused_by_name_before_any_work(tmp_path, plugins):
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    store = tmp_path / "store"
    sample = [
        "sample",
        "shapes",
        "--classes",
        "a,b",
        "--per-class",
        "1",
        "--store",
        str(store),
        "--no-progress",
    ]
    cases = {
        str(afile): "is a file",
        f"{afile}/x": "goes through",
        f"{afile}/../x": "goes through",
        str(tmp_path / "loop1"): "loop of symbolic links",
        f"{tmp_path}/loop1/x": "loop of symbolic links",
    }
    for out, said in cases.items():
        result = invoke(plugins, *sample, "--out", out)
        assert result.exit_code == 2 and said in result.output, (out, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert not store.exists()


def test_report_over_a_folder_with_one_damaged_report_names_it(tmp_path, plugins):
    import json

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps({"verdicts": []}))
    (tmp_path / "b" / "report.json").write_text('{"verdicts": [')
    result = invoke(plugins, "report", str(tmp_path))
    assert (
        result.exit_code == 2 and f"{tmp_path / 'b' / 'report.json'}: not a readable report" in result.output
    )
    assert isinstance(result.exception, SystemExit)


def test_verify_repair_with_a_file_where_the_quarantine_goes_changes_nothing(tmp_path, plugins):
    store = Store(tmp_path / "store", notify=lambda m: None)
    entry = make_entries(store, 1)[0]
    (entry / "data.npz").write_bytes(b"damaged")
    (store.root / "quarantine").write_text("not a folder")
    result = invoke(plugins, "store", "verify", "--repair", "--store", str(store.root))
    assert result.exit_code == 2 and "quarantine: is a file" in result.output, result.output
    assert (entry / "data.npz").read_bytes() == b"damaged"


def test_a_fleet_file_that_is_binary_or_names_an_unknown_generator_is_said_as_such(tmp_path, plugins):
    binary = tmp_path / "fleet.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    result = invoke(plugins, "fleet", str(binary), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "is not UTF-8" in result.output, result.output
    fleet = tmp_path / "unknown.toml"
    fleet.write_text(
        '[[task]]\nclasses = ["a", "b"]\nimage_size = 16\n[[generator]]\nuse = "no-such-gen"\n'
        '[shadow]\nprompt = "a {label}"\nper_class = 2\ntrainer = "pixel-logistic"\n'
        '[validation]\nprompt = "b {label}"\nper_class = 2\nbatch_size = 2\n'
        '[[suspect]]\nname = "s"\nuse = "timm"\ncheckpoint = "m"\ntruth = "shapes"\n'
    )
    result = invoke(plugins, "fleet", str(fleet), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "[generator no-such-gen] key 'use': unknown generator 'no-such-gen'" in result.output, (
        result.output
    )


@pytest.mark.parametrize("prompt", ["a {label.__class__}", "a {label[0]}", "{0}", "a {label!r}", "{}"])
def test_prompt_templates_allow_label_only(tmp_path, plugins, prompt):
    result = invoke(
        plugins, "sample", "shapes", "--classes", "a,b", "--per-class", "1", "--prompt", prompt,
        "--out", str(tmp_path / "out"), "--store", str(tmp_path / "store"), "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 2 and "is not a valid template" in result.output, result.output
    assert not (tmp_path / "store").exists()


RUN_CLI = """
import sys
from trainprove_core.cli import cli
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import load_plugins

plugins = load_plugins()
plugins.register(GlyphPlugin(), "glyphs", "tests")
cli(args=sys.argv[1:], obj={"plugins": plugins}, prog_name="trainprove")
"""


def test_any_write_that_fills_the_disk_is_one_line(shared_dir, plugins):
    """generate's preview sheets on a disk that is full: one line naming the path, exit code 2; the image
    sets made before are kept in the store."""
    import shlex
    import sys

    audit = shared_dir / "audit.toml"
    from trainprove_core.listing import toml_value

    doc = small_audit(a_suspect(plugins, shared_dir / "pool"))
    lines = []
    for table, value in doc.items():
        for entry in value if isinstance(value, list) else [value]:
            lines.append(f"[[{table}]]" if isinstance(value, list) else f"[{table}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in entry.items()]
    audit.write_text("\n".join(lines) + "\n")
    full, store = shared_dir / "full", shared_dir / "store"
    full.mkdir()
    script = shared_dir / "run.py"
    script.write_text(RUN_CLI)
    python = shlex.quote(sys.executable)
    result = in_namespace(
        f"mount -t tmpfs -o size=64k tmpfs {full} && mkdir {full}/out && "
        f"(dd if=/dev/zero of={full}/filler bs=4k 2>/dev/null; true) && "
        f"{python} {script} generate {audit} --out {full}/out --store {store} --no-progress"
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"{full}/out/shadow-preview.png: cannot write: no space left on the device" in result.stderr
    assert list(store.glob("image-sets/*/meta.json"))  # the set made before the sheet is kept


MODES = """
import os, sys
os.umask(int(sys.argv[2], 8))
import numpy as np
from trainprove_core.errors import TrainproveError
from trainprove_core.store import Store
store = Store(sys.argv[1], notify=lambda m: None)
try:
    store.chunked("sets", {"e": 1}, [0], lambda p: ((j, {"x": np.arange(3)}) for j in p))
except TrainproveError as exc:
    sys.exit(f"error: {exc}")
entry = store.location("sets", {"e": 1})
print(oct(entry.stat().st_mode & 0o7777), oct((entry / "data.npz").stat().st_mode & 0o7777))
"""


@pytest.mark.parametrize(
    ("umask", "variable", "modes"),
    [("007", None, "0o770 0o660"), ("077", None, "0o700 0o600"), ("077", "664", "0o2775 0o664")],
)
def test_entries_get_the_umasks_mode_or_the_stores(tmp_path, umask, variable, modes):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRAINPROVE_STORE_MODE"}
    if variable:
        env["TRAINPROVE_STORE_MODE"] = variable
    argv = [sys.executable, "-c", MODES, str(tmp_path / "store"), umask]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.split() == modes.split(), result


@pytest.mark.parametrize("value", ["abc", "999", "444", "1777"])
def test_a_store_mode_that_is_not_one_is_refused_naming_the_variable(tmp_path, value):
    import subprocess
    import sys

    env = {**os.environ, "TRAINPROVE_STORE_MODE": value}
    argv = [sys.executable, "-c", MODES, str(tmp_path / "store"), "022"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"$TRAINPROVE_STORE_MODE={value!r}: not a file mode" in result.stderr
