"""A re-run costs what changed: a finished audit re-run loads no model, sends no query and decides no
verdict again; with one more suspect it loads, queries and judges that one only. Weight hashes are cached
by the file's stat and verified when the weights are loaded. Counts, not clocks (bench/audit_scale.py
measures the time)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from core_test_helpers import base_audit

from trainprove_core import identity_cache
from trainprove_core.audit import run_audit
from trainprove_core.config import config_from_dict
from trainprove_core.errors import InputError
from trainprove_core.store import Store

TESTS = [{"use": "trainprove"}, {"use": "welch"}, {"use": "random-guess"}]


def suspect(name, checkpoint):
    return {"name": name, "use": "timm", "checkpoint": str(checkpoint)}


@pytest.mark.slow
def test_a_rerun_redoes_nothing_and_one_more_suspect_costs_only_itself(plugins, suspect_pool, tmp_path):
    store = Store(tmp_path / "store")
    third = perturbed(suspect_pool["same"], tmp_path / "third")
    two = [suspect("same", suspect_pool["same"]), suspect("other", suspect_pool["other"])]

    def audit(suspects, out):
        doc = base_audit(suspect=suspects, test=TESTS)
        return run_audit(config_from_dict(doc, plugins), plugins, tmp_path / out, store, show_progress=False)

    cold = audit(two, "cold").report
    counts = cold["counts"]
    assert counts["images_made"] == 3 * (60 + 100) and counts["models_trained"] == 1
    assert counts["models_loaded"] == 3 and counts["queries_sent"] == 3 * 300  # the shadow and two suspects
    assert counts["verdicts_made"] == 2 * len(TESTS) and counts["verdicts_reused"] == 0
    assert set(cold["timings"]) >= {
        "generation",
        "training",
        "model_loading",
        "queries",
        "decisions",
        "report",
    }

    warm = audit(two, "warm").report
    assert warm["verdicts"] == cold["verdicts"]
    counts = warm["counts"]
    assert counts["images_made"] == 0 and counts["images_cached"] == 3 * (60 + 100)
    assert counts["models_trained"] == 0 and counts["models_cached"] == 1
    assert counts["models_loaded"] == 0 and counts["queries_sent"] == 0  # nothing loaded, nothing asked
    assert counts["verdicts_made"] == 0 and counts["verdicts_reused"] == 2 * len(TESTS)

    more = audit([*two, suspect("third", third)], "more").report
    counts = more["counts"]
    assert counts["models_loaded"] == 1 and counts["queries_sent"] == 300  # the new suspect only
    assert counts["verdicts_made"] == len(TESTS) and counts["verdicts_reused"] == 2 * len(TESTS)
    assert more["verdicts"][: 2 * len(TESTS)] == cold["verdicts"]
    assert [v["suspect"] for v in more["verdicts"][2 * len(TESTS) :]] == ["third"] * len(TESTS)

    # The same weights under another path are the same model: its answers are already in the store.
    shutil.copytree(suspect_pool["other"], tmp_path / "copy")
    again = audit([*two, suspect("copy", tmp_path / "copy")], "copy").report
    assert again["counts"]["models_loaded"] == 0 and again["counts"]["queries_sent"] == 0


def perturbed(checkpoint, folder):
    """A copy of `checkpoint` with slightly different weights: another model."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(checkpoint, folder)
    state = load_file(str(folder / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 10)
    state[name] = state[name] * 1.01
    save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.mark.slow
def test_a_new_suspect_that_cannot_serve_still_fails_before_any_work(plugins, suspect_pool, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(suspect_pool["same"], broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "architecture": "test_efficientnet"}))
    doc = base_audit(suspect=[suspect("broken", broken)], test=TESTS[:1])
    with pytest.raises(InputError, match=r"\[suspect broken\].*does not fit timm architecture"):
        run_audit(config_from_dict(doc, plugins), plugins, tmp_path / "out", Store(tmp_path / "s"), False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "s" / "image-sets").exists()


def test_file_hashes_are_cached_by_stat_and_redone_when_the_file_changes(tmp_path, monkeypatch):
    cache = tmp_path / "digests"
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 1000)
    first = identity_cache.file_sha256(weights, cache)
    assert len(list(cache.iterdir())) == 1
    calls = []
    monkeypatch.setattr(identity_cache, "_hash_file", lambda p: calls.append(p) or "stale")
    assert identity_cache.file_sha256(weights, cache) == first and calls == []  # from the cache

    weights.write_bytes(b"b" * 1000)  # same size; mtime and ctime move
    assert identity_cache.file_sha256(weights, cache) == "stale" and len(calls) == 1
    monkeypatch.undo()

    # Put the old mtime back (as `touch -d` can): the change time still tells, and the file is hashed.
    weights.write_bytes(b"c" * 1000)
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert identity_cache.file_sha256(weights, cache) != first

    monkeypatch.setenv("TRAINPROVE_REHASH", "1")
    calls.clear()
    monkeypatch.setattr(identity_cache, "_hash_file", lambda p: calls.append(p) or "again")
    assert identity_cache.file_sha256(weights, cache) == "again" and calls  # TRAINPROVE_REHASH=1 rehashes


def test_weights_that_changed_after_the_identity_was_made_are_refused_when_loaded(suspect_pool, tmp_path):
    from trainprove_timm.model import TimmSuspect

    from trainprove_core.task import Task

    folder = tmp_path / "m"
    shutil.copytree(suspect_pool["same"], folder)
    settings = {"checkpoint": str(folder), "arch": None, "label_names": None, "mean": None, "std": None}
    settings |= {"batch_size": 64, "device": "cpu"}
    with identity_cache.using(tmp_path / "digests"):
        lazy = TimmSuspect.from_settings(settings, Task(("disc", "ring", "hbar"), 16), lazy=True)
    assert not lazy.loaded  # built without reading the weights
    other = suspect_pool["other"] / "model.safetensors"
    shutil.copyfile(other, folder / "model.safetensors")
    with pytest.raises(InputError, match="changed while the audit ran"):
        lazy.load()
    # The entry now holds the new hash: the next audit keys the new weights by their own hash.
    assert identity_cache.file_sha256(folder / "model.safetensors", tmp_path / "digests") == (
        identity_cache.file_sha256(other)
    )
