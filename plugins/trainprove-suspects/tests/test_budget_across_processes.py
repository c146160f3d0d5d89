"""A suspect's query budget holds over audits running at once on one store: two and three audits of one
http suspect (differing only in their validation seed, so no answer is shared) start together against one
loopback server, and the server counts the images it was sent."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from trainprove_suspects.serve import Faults, create_app, serve

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
    print(json.dumps({"errors": result.errors}))
""")

PER_AUDIT = 3 * 16  # validation images: 3 classes x 16
BUDGET = 80  # one audit fits, two do not


def usage_sent(store) -> int:
    logs = list(store.glob("ledgers/*/usage.log"))
    assert len(logs) == 1, logs
    return sum(int(line.split()[1]) for line in logs[0].read_text().splitlines() if line.startswith("sent "))


@pytest.mark.parametrize("n_audits", [2, 3])
def test_audits_at_once_on_one_store_never_send_more_than_the_budget(model, task, tmp_path, n_audits):
    faults = Faults()
    with serve(create_app(model, task.classes, image_size=task.image_size, faults=faults)) as url:
        suspect = {
            "name": "api",
            "use": "http",
            "url": url,
            "model": "suspect",
            "budget": BUDGET,
            "batch_size": 8,
            "images_per_request": 4,
            "retries": 0,
            "timeout": 30.0,
        }
        store = tmp_path / "store"
        procs = []
        for i in range(n_audits):
            doc = {
                "task": {"classes": list(task.classes), "image_size": task.image_size},
                "generator": {"use": "shapes"},
                "shadow": {"prompt": "a {label}", "per_class": 10, "trainer": "pixel-logistic"},
                "validation": {"prompt": "a {label}", "per_class": 16, "batch_size": 8, "seed": 100 + i},
                "suspect": [suspect],
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", AUDIT, json.dumps(doc), str(tmp_path / f"out{i}"), str(store)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * n_audits, [err[-3000:] for _, err in results]
    errors = [json.loads(out)["errors"] for out, _ in results]
    # What the server saw, and what the ledger says was sent, stay within the budget, whatever the order.
    assert faults.answered <= BUDGET and usage_sent(store) <= BUDGET, (faults.answered, errors)
    assert faults.answered <= usage_sent(
        store
    )  # a request in flight when a suspect stopped may go unanswered
    # At most one audit fits the budget (which ones got how far depends on the machine's timing); the
    # others stop that suspect with the budget's message.
    assert sum(not e for e in errors) <= BUDGET // PER_AUDIT, errors
    for stopped in (e for e in errors if e):
        assert any("budget of 80" in line or "its budget is 80" in line for line in stopped), stopped
