"""A store is safe to share: audits started together on one empty store all finish, agree, and build
each artifact exactly once (counted in the store's own log, as a user can count them)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from trainprove_core.audit import Workspace
from trainprove_core.config import ImageSetConfig
from trainprove_core.store import Store
from trainprove_core.task import Task

AUDIT = textwrap.dedent("""
    import json, sys
    from trainprove_core.audit import run_audit
    from trainprove_core.config import config_from_dict
    from trainprove_core.glyphs import GlyphPlugin
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store

    plugins = load_plugins()
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    doc, out, store = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    result = run_audit(config_from_dict(doc, plugins), plugins, out, Store(store), False, html=False)
    print(json.dumps([[v["suspect"], v["test"], v["decision"]] for v in result.report["verdicts"]]))
""")

N_AUDITS = 3


@pytest.mark.slow
def test_three_audits_at_once_on_an_empty_store_finish_agree_and_build_everything_once(plugins, tmp_path):
    task = Task(("disc", "ring", "hbar"), 16)
    pool = Workspace.open(task, plugins, Store(tmp_path / "pool"), show_progress=False)
    other = pool.generator(pool.plugin_table("generator", "shapes", {"style": 1.0}))
    images = pool.image_set("suspect", other, ImageSetConfig("an image of a {label}", 30, seed=7))
    suspect_dir, _, _ = pool.trained_model(pool.plugin_table("shadow-trainer", "pixel-logistic", {}), images)

    doc = {
        "task": {"classes": list(task.classes), "image_size": 16},
        # Slow chunks, so the audits overlap in every stage.
        "generator": {"use": "shapes", "batch_size": 10, "delay": 0.05},
        "shadow": {"prompt": "a {label}", "per_class": 40, "trainer": "pixel-logistic"},
        "validation": {"prompt": "a photo of a {label}", "per_class": 40, "batch_size": 12},
        "suspect": [{"name": "other", "use": "pixel-logistic", "model_dir": str(suspect_dir)}],
    }
    store = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AUDIT, json.dumps(doc), str(tmp_path / f"out{i}"), str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(N_AUDITS)
    ]
    results = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0] * N_AUDITS, [err for _, err in results]
    verdicts = [json.loads(out) for out, _ in results]
    assert verdicts[0] and all(v == verdicts[0] for v in verdicts)

    log = (store / "store.log").read_text().splitlines()
    built = Counter(line.split()[4] for line in log if line.split()[3] == "built")
    kinds = Counter(entry.split("/")[0] for entry in built)
    # the shadow and validation sets, the shadow model, the shadow's and the suspect's answers, the verdicts
    assert kinds == {"image-sets": 2, "models": 1, "answers": 2, "verdicts": 1}, log
    assert set(built.values()) == {1}, log
    assert any(line.split()[3] == "waited" for line in log), log  # they did meet
    assert not list(store.glob("*/.building-*")) and not list(store.glob("*/*.partial-*"))
    assert not list((store / "locks").glob("*/*.lock"))


SET = textwrap.dedent("""
    import sys
    from trainprove_core.audit import Workspace
    from trainprove_core.config import ImageSetConfig
    from trainprove_core.glyphs import GlyphPlugin
    from trainprove_core.plugins import load_plugins
    from trainprove_core.store import Store
    from trainprove_core.task import Task

    plugins = load_plugins()
    plugins.register(GlyphPlugin(), "glyphs", "tests")
    ws = Workspace.open(Task(("disc", "ring", "hbar"), 16), plugins, Store(sys.argv[1]), show_progress=False)
    # `delay` is not part of the generator's identity: both processes make the same set
    settings = {"batch_size": 10, "delay": float(sys.argv[3]), "log": sys.argv[2]}
    ws.image_set("validation", ws.generator(ws.plugin_table("generator", "shapes", settings)),
                 ImageSetConfig("a {label}", 40, seed=3))
    print("finished")
""")


def test_a_waiting_audit_takes_over_from_a_killed_builder_and_redoes_nothing(tmp_path):
    """The builder is killed with SIGKILL while another process waits for it (its claim dies with it):
    the waiter takes the claim, keeps every chunk the dead one saved, and makes only the rest."""
    import os
    import signal
    import time

    store = tmp_path / "store"

    def start(delay: float) -> subprocess.Popen:
        command = [sys.executable, "-c", SET, str(store), str(tmp_path / f"seeds-{delay}.txt"), str(delay)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    builder = start(delay=2.0)  # 12 chunks: far longer than the waiter needs to start
    saved = store / "image-sets"
    while builder.poll() is None and not list(saved.glob("*.partial-*/[0-9]*.npz")):
        time.sleep(0.05)
    waiter = start(delay=0.0)
    said = ""
    while "waiting for pid" not in said and waiter.poll() is None:
        said = waiter.stderr.readline()
    assert f"waiting for pid {builder.pid} on " in said, said
    os.kill(builder.pid, signal.SIGKILL)
    builder.wait()
    assert waiter.communicate()[0].strip() == "finished" and waiter.returncode == 0
    # The waiter made only the chunks the dead builder had not saved: at most the one it was making when
    # it was killed (a chunk's seeds are logged when it starts) is made by both.
    started = (tmp_path / "seeds-2.0.txt").read_text().split()
    made = (tmp_path / "seeds-0.0.txt").read_text().split()
    assert 10 <= len(started) < 120 and len(made) <= 110
    assert set(started) & set(made) <= set(started[-10:])
    assert len(set(started) | set(made)) == 120
    assert not list(saved.glob(".building-*")) and not list(saved.glob("*.partial-*"))
    log = (store / "store.log").read_text()
    assert f"pid={waiter.pid}" in log and " waited " in log and " built " in log
