"""The `http` adapter's bounds and its accounting, against loopback servers that misbehave: a response
too large, answers that come too late, a budget that retries would exceed, a chunk that fails half-way.

What the server answered is what `Faults.answered` counts on the server's side (late answers included),
so these tests compare the adapter's `sent` and `paid` with the truth, not with themselves.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from trainprove_suspects import plugin, transport
from trainprove_suspects.http_api import HttpSuspect
from trainprove_suspects.serve import Faults, create_app, serve

from trainprove_core.audit import ImageSet, Workspace
from trainprove_core.errors import BudgetExceeded, InputError
from trainprove_core.store import Store
from trainprove_core.testing import isolated_plugins

V2 = {"model": "suspect"}


@pytest.fixture
def server(model, task):
    faults = Faults(retry_after="0.1", slow_seconds=1.5)
    with serve(create_app(model, task.classes, image_size=task.image_size, faults=faults)) as url:
        yield url, faults


@pytest.fixture
def workspace(task, images, tmp_path):
    """A workspace on a store of its own, and the 40 test images as its validation set."""
    plugins = isolated_plugins((plugin, "trainprove-suspects"))
    ws = Workspace.open(task, plugins, Store(tmp_path / "store"), show_progress=False)
    return ws, ImageSet("validation", "validation-key", images, np.arange(len(images)) % 3, {"kind": "test"})


def adapter(workspace, url, **table):
    ws, _ = workspace
    settings = {"url": url, **V2, "backoff": 0.01, "retries": 1, "timeout": 1.0, "concurrency": 1, **table}
    validated = ws.plugin_table("suspect", "http", settings)
    return ws.plugins.get("suspect", "http").spec.factory(validated.settings, ws.task)


def test_a_response_over_the_cap_is_refused_as_it_arrives(server, task, images, http_settings, monkeypatch):
    url, faults = server
    monkeypatch.setattr(transport, "MAX_BYTES", 2**20)  # 1 MiB, so the test does not move 64 MiB
    faults.always = "huge"
    suspect = HttpSuspect(http_settings(url=url, **V2, tensor_encoding="json"), task)
    with pytest.raises(InputError, match=r"the response is larger than 1 MiB; ask for fewer images per"):
        suspect.predict(images[:4])
    assert faults.requests == 1  # not retried: the next answer would be as large


def test_an_answer_cut_off_at_the_deadline_is_still_paid(server, workspace, images):
    """A server that trickles its answer: its 200 arrived, so it answered (and bills) the images, though the
    whole body did not arrive within `timeout`."""
    url, faults = server
    faults.slow_seconds = 2.0  # 0.2 s a byte
    faults.always = "trickle"
    suspect = adapter(workspace, url, retries=0, images_per_request=4, tensor_encoding="json")
    with pytest.raises(InputError, match=r"no complete answer within the 1 s timeout"):
        suspect.predict(images[:4])
    assert (suspect.usage.sent, suspect.usage.paid, faults.answered) == (4, 4, 4)


def test_late_answers_never_take_what_the_server_answered_over_the_budget(server, workspace):
    """Requests that time out are answered anyway, later: a retry is a second answer, paid for. The budget
    bounds what is sent, so what the server answered stays within it; the error says where it stopped."""
    url, faults = server
    ws, validation = workspace
    faults.schedule("slow", None, "slow", None, "slow")  # 1.5 s > timeout 1 s: timed out, answered later
    suspect = adapter(workspace, url, budget=48, batch_size=8, images_per_request=8, retries=3)
    with pytest.raises(BudgetExceeded, match=r"would bring the images sent to this suspect to 56, over its"):
        ws.answers("vendor", suspect, validation)
    time.sleep(faults.slow_seconds + 0.5)  # let the late answers land before counting them
    assert suspect.usage.sent == 48 and faults.answered <= 48
    assert suspect.usage.paid <= faults.answered


def test_the_answered_part_of_a_failed_chunk_is_not_paid_again(server, workspace, expected):
    url, faults = server
    ws, validation = workspace
    table = {"batch_size": 16, "images_per_request": 8}  # chunks of 16, 16, 8 images; 2, 2, 1 requests
    faults.break_after(3, "http-500")  # chunk 0, then half of chunk 1
    first = adapter(workspace, url, **table)
    with pytest.raises(InputError, match="HTTP 500"):
        ws.answers("vendor", first, validation)
    assert (first.usage.sent, first.usage.paid) == (40, 24)  # 24 answered, the 4th request tried twice

    faults.reset()
    second = adapter(workspace, url, **table)
    answers, _ = ws.answers("vendor", second, validation)
    np.testing.assert_array_equal(answers.labels, expected.argmax(1))
    assert (second.usage.sent, second.usage.paid, faults.answered) == (16, 16, 16)  # only what was missing
    assert second.ledger.sent_total == 56 and second.ledger.paid_total == 40
    second.attach(second.ledger.folder)  # asked again (another image set): this run is not counted twice
    assert second.ledger.sent_total == 56
