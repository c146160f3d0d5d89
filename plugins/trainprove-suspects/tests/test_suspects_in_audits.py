"""The adapters inside the core's machinery: answers cached per chunk, a dead endpoint stopping a suspect
with what it already answered kept, a resumed run paying only for the rest, and the query budget."""

from __future__ import annotations

import numpy as np
import pytest
from trainprove_suspects import plugin
from trainprove_suspects.serve import Faults, create_app, serve

from trainprove_core.audit import ImageSet, Workspace
from trainprove_core.errors import BudgetExceeded, InputError
from trainprove_core.store import Store
from trainprove_core.testing import isolated_plugins

CHUNK = 8  # images per cached chunk, one request each


@pytest.fixture
def setup(model, task, images, tmp_path):
    """A workspace with this plugin, a validation set of 40 images, and the suspect on a loopback server."""
    faults = Faults(retry_after="0.2", slow_seconds=2.0)
    plugins = isolated_plugins((plugin, "trainprove-suspects"))
    workspace = Workspace.open(task, plugins, Store(tmp_path / "store"), show_progress=False)
    labels = np.arange(len(images)) % 3
    validation = ImageSet("validation", "validation-key", images, labels, {"kind": "test"})
    with serve(create_app(model, task.classes, image_size=task.image_size, faults=faults)) as url:

        def adapter(**table):
            settings = {
                "url": url,
                "model": "suspect",
                "batch_size": CHUNK,
                "images_per_request": CHUNK,
                "backoff": 0.01,
                "retries": 2,
                "timeout": 1.0,
                **table,
            }
            validated = workspace.plugin_table("suspect", "http", settings)
            return plugins.get("suspect", "http").spec.factory(validated.settings, task)

        yield workspace, validation, faults, adapter


def test_transient_faults_on_every_chunk_still_give_the_healthy_answers(setup, expected):
    workspace, validation, faults, adapter = setup
    # Each chunk's request fails once, then its retry is answered.
    faults.schedule("http-500", None, "http-429", None, "truncated", None, "not-json", None, "slow", None)
    answers, _ = workspace.answers("vendor", adapter(), validation)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    assert workspace.queries_sent["vendor"] == 40 and faults.requests == 10


def test_a_dead_endpoint_keeps_what_it_answered_and_a_rerun_pays_only_for_the_rest(setup, expected):
    workspace, validation, faults, adapter = setup
    faults.break_after(2, "http-500")
    with pytest.raises(InputError, match=r"/v2/models/suspect/infer: HTTP 500 .*gave up after 3 attempts"):
        workspace.answers("vendor", adapter(), validation)
    suspect = adapter()
    identity = {
        "kind": "answers",
        "model": dict(suspect.identity),
        "image_set": validation.key,
        "label_names": None,
    }
    assert workspace.store.cached_chunks("answers", identity, 5) == [0, 1]

    faults.reset()
    answers, _ = workspace.answers("vendor", suspect, validation)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    assert faults.requests == 3  # chunks 2, 3 and 4 only
    faults.reset()
    workspace.answers("vendor", adapter(budget=1), validation)  # all cached: costs nothing, even at budget 1
    assert faults.requests == 0


def test_the_budget_stops_before_anything_is_sent(setup):
    workspace, validation, faults, adapter = setup
    with pytest.raises(BudgetExceeded, match="takes 40 queries but its budget is 39"):
        workspace.answers("vendor", adapter(budget=39), validation)
    assert faults.requests == 0
