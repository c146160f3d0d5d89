"""The store checks what it reads: every kind of damage is named by its path, quarantined and made again
(paid answers only with the user's consent), and `trainprove store verify` / `gc` find and tidy it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from core_test_helpers import run_cli

from trainprove_core.audit import Workspace
from trainprove_core.config import ImageSetConfig
from trainprove_core.store import DamagedEntry, Store, content_key
from trainprove_core.task import Task

TASK = Task(("disc", "ring", "hbar"), 16)


class Made:
    """A chunked artifact's work, counting what it made."""

    def __init__(self, offset: int = 0) -> None:
        self.made: list[int] = []
        self.offset = offset

    def __call__(self, pending):
        for i in pending:
            self.made.append(i)
            yield i, {"x": np.arange(4) + 10 * i + self.offset}


def quiet(tmp_path: Path) -> tuple[Store, list[str]]:
    said: list[str] = []
    return Store(tmp_path / "store", notify=said.append), said


def log_events(store: Store, event: str) -> list[str]:
    return [line for line in (store.root / "store.log").read_text().splitlines() if f" {event} " in line]


def flip_byte(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if at is None else at
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "flipped byte in data.npz": lambda entry, other: flip_byte(entry / "data.npz"),
    "a valid data.npz of another entry": lambda entry, other: shutil.copy(
        other / "data.npz", entry / "data.npz"
    ),
    "empty meta.json": lambda entry, other: (entry / "meta.json").write_text(""),
    "meta.json deleted": lambda entry, other: (entry / "meta.json").unlink(),
    "data.npz deleted": lambda entry, other: (entry / "data.npz").unlink(),
    "data.npz truncated": lambda entry, other: (entry / "data.npz").write_bytes(
        (entry / "data.npz").read_bytes()[:50]
    ),
    "another entry's meta.json": lambda entry, other: shutil.copy(other / "meta.json", entry / "meta.json"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_finished_artifact_is_quarantined_and_made_again(tmp_path, damage):
    store, said = quiet(tmp_path)
    first = store.chunked("sets", {"a": 1}, [0, 1, 2], Made())
    store.chunked("sets", {"a": 2}, [0, 1, 2], Made(offset=5))
    entry, other = store.location("sets", {"a": 1}), store.location("sets", {"a": 2})
    DAMAGES[damage](entry, other)

    again = Made()
    out = store.chunked("sets", {"a": 1}, [0, 1, 2], again)
    assert np.array_equal(out["x"], first["x"]) and again.made == [0, 1, 2]
    assert len(said) == 1 and str(entry) in said[0] and "quarantine" in said[0], said
    (moved,) = (store.root / "quarantine").iterdir()
    assert (moved / entry.name).is_dir() and str(entry) in (moved / "REASON.txt").read_text()
    assert len(log_events(store, "quarantined")) == 1
    assert store.chunked("sets", {"a": 1}, [0, 1, 2], Made())["x"].tolist() == first["x"].tolist()


def test_a_part_swapped_from_another_index_is_made_again(tmp_path):
    store, said = quiet(tmp_path)
    key = content_key({"a": 1})

    def stop_after_two(pending):
        for i in pending[:2]:
            yield i, {"x": np.arange(4) + 10 * i}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.chunked("sets", {"a": 1}, [0, 1, 2], stop_after_two)
    partial = store.root / "sets" / f"{key}.partial-3"
    shutil.copy(partial / "000000.npz", partial / "000001.npz")  # a valid chunk, of the wrong index
    again = Made()
    out = store.chunked("sets", {"a": 1}, [0, 1, 2], again)
    assert sorted(again.made) == [1, 2] and out["x"].tolist() == [*range(4), *range(10, 14), *range(20, 24)]
    assert "000001.npz" in said[0]


def paid_answers(store: Store) -> tuple[dict, Path]:
    identity = {"kind": "answers", "model": {"url": "http://x"}}
    store.chunked("answers", identity, [0, 1], Made(), paid=True)
    return identity, store.location("answers", identity)


def test_damaged_paid_answers_stop_with_the_path_and_are_asked_again_only_after_repair(tmp_path):
    store, said = quiet(tmp_path)
    identity, entry = paid_answers(store)
    flip_byte(entry / "data.npz")
    asked = Made()
    with pytest.raises(DamagedEntry) as error:
        store.chunked("answers", identity, [0, 1], asked, paid=True)
    message = str(error.value)
    assert str(entry) in message and "trainprove store verify --repair" in message and "paid" in message
    assert asked.made == [] and entry.is_dir() and not (store.root / "quarantine").exists()

    report = run_cli("store", "verify", "--store", str(store.root), "--json")
    assert report.returncode == 1, report.stderr
    (damaged,) = json.loads(report.stdout)["damaged"]
    assert damaged["path"] == f"answers/{entry.name}" and damaged["paid"] is True and damaged["rows"] == 8
    assert entry.is_dir()  # verify without --repair changes nothing

    repaired = run_cli("store", "verify", "--store", str(store.root), "--repair")
    assert repaired.returncode == 1 and "costs 8 queries" in repaired.stdout, repaired.stdout
    assert not entry.exists()
    store.chunked("answers", identity, [0, 1], asked, paid=True)
    assert asked.made == [0, 1]
    assert run_cli("store", "verify", "--store", str(store.root)).returncode == 0


def test_flipped_bytes_in_a_shadow_model_are_found_and_it_is_trained_again(plugins, tmp_path):
    said: list[str] = []
    ws = Workspace.open(TASK, plugins, Store(tmp_path / "store", notify=said.append), show_progress=False)
    images = ws.image_set(
        "shadow",
        ws.generator(ws.plugin_table("generator", "shapes", {})),
        ImageSetConfig("a {label}", 20, seed=0),
    )
    table = ws.plugin_table("shadow-trainer", "pixel-logistic", {})
    model_dir, _, key = ws.trained_model(table, images)
    weights = (model_dir / "weights.npz").read_bytes()
    flip_byte(model_dir / "weights.npz", at=len(weights) - 200)  # inside the arrays: still loads

    again, _, again_key = ws.trained_model(table, images)
    assert again == model_dir and again_key == key and (again / "weights.npz").read_bytes() == weights
    assert any(str(model_dir) in s and "SHA-256" in s for s in said), said
    assert len(log_events(ws.store, "built")) == 3  # the set, the model, the model again


def test_an_entry_of_an_older_store_is_adopted(tmp_path):
    store, said = quiet(tmp_path)
    entry = store.location("sets", {"a": 1})
    entry.mkdir(parents=True)
    np.savez(entry / "data.npz", x=np.arange(3))
    (entry / "meta.json").write_text(json.dumps({"a": 1}))  # what trainprove wrote before hashes
    assert store.chunked("sets", {"a": 1}, [0], Made())["x"].tolist() == [0, 1, 2]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["identity"] == {"a": 1} and "sha256" in meta["files"]["data.npz"] and not said


def test_verify_reports_every_damage_by_path_and_repair_quarantines(tmp_path):
    store, _ = quiet(tmp_path)
    store.chunked("sets", {"a": 1}, [0, 1], Made())
    store.directory("models", {"m": 1}, lambda tmp: (tmp / "w.bin").write_bytes(b"weights" * 100))
    assert run_cli("store", "verify", "--store", str(store.root)).returncode == 0
    flip_byte(store.location("models", {"m": 1}) / "w.bin")
    (store.location("sets", {"a": 1}) / "meta.json").write_text("")

    shown = run_cli("store", "verify", "--store", str(store.root))
    assert shown.returncode == 1
    assert f"models/{content_key({'m': 1})}  w.bin: its SHA-256 differs" in shown.stdout
    assert f"sets/{content_key({'a': 1})}  meta.json is empty" in shown.stdout
    assert "trains the model again" in shown.stdout
    fixed = run_cli("store", "verify", "--store", str(store.root), "--repair", "--json")
    assert [d["quarantined"] is not None for d in json.loads(fixed.stdout)["damaged"]] == [True, True]
    assert run_cli("store", "verify", "--store", str(store.root)).returncode == 0
    missing = run_cli("store", "verify", "--store", str(tmp_path / "nowhere"))
    assert (
        missing.returncode == 2 and "no store there" in missing.stderr and "Traceback" not in missing.stderr
    )


def test_gc_sweeps_what_dead_builders_left_and_keeps_live_and_resumable_work(tmp_path):
    store, _ = quiet(tmp_path)
    store.chunked("sets", {"done": 1}, [0], Made())
    done_key, live_key, dead_key = (content_key({k: 1}) for k in ("done", "live", "dead"))
    with Store(store.root)._claim("sets", live_key):  # a live builder of `live`, in this process
        kind = store.root / "sets"
        dead_build = kind / f".building-{dead_key}-999999-abc"
        dead_build.mkdir()
        resumable = kind / f"{dead_key}.partial-3"
        resumable.mkdir()
        np.savez(resumable / "000000.npz", x=np.arange(2))
        (resumable / ".tmp-999999-x.npz").write_bytes(b"half")
        leftover = kind / f"{done_key}.partial-1"  # a merge killed before it removed its chunks
        leftover.mkdir()
        live_build = kind / f".building-{live_key}-{os.getpid()}-abc"
        live_build.mkdir()
        dry = run_cli("store", "gc", "--store", str(store.root), "--dry-run")
        assert "would remove 3 orphans" in dry.stdout and dead_build.exists()
        listed = run_cli("store", "gc", "--store", str(store.root), "--json")
    removed = set(json.loads(listed.stdout)["removed"]["orphans"])
    assert removed == {
        f"sets/.building-{dead_key}-999999-abc",
        f"sets/{dead_key}.partial-3/.tmp-999999-x.npz",
        f"sets/{done_key}.partial-1",
    }
    assert live_build.exists() and (resumable / "000000.npz").exists()
    assert len(log_events(store, "swept")) == 3


def test_gc_removes_unused_entries_but_keeps_paid_answers(tmp_path):
    store, _ = quiet(tmp_path)
    store.chunked("sets", {"old": 1}, [0], Made())
    _, paid = paid_answers(store)
    store.chunked("sets", {"new": 1}, [0], Made())
    week_ago = 1e9
    for entry in (store.location("sets", {"old": 1}), paid):
        os.utime(entry / "meta.json", (week_ago, week_ago))
    shown = run_cli("store", "gc", "--store", str(store.root), "--unused-days", "3")
    assert shown.returncode == 0 and "removed 1 unused" in shown.stdout
    assert not store.location("sets", {"old": 1}).exists() and paid.exists()
    assert store.location("sets", {"new": 1}).exists()


def test_verify_and_gc_leave_ledgers_and_the_hash_cache_alone(tmp_path):
    """An http suspect's ledger (what it was sent and paid for) and the cache of weight hashes are not
    artifacts: verify must not call them damaged, and --repair must not quarantine them."""
    store = Store(tmp_path / "store")
    ledger = store.root / "ledgers" / "abc"
    (ledger / "answers").mkdir(parents=True)
    (ledger / "usage.log").write_text("sent 5\n")
    (store.root / "file-digests").mkdir()
    (store.root / "file-digests" / "x.json").write_text("{}")
    checked, problems = store.verify(repair=True)
    assert problems == [] and (ledger / "usage.log").exists()
    assert store.remove_unused(0, include_paid=True) == [] and (ledger / "usage.log").exists()
