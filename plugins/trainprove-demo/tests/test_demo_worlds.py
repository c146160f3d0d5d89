"""`trainprove demo --world fashion`: the fleet it audits, built without training anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from trainprove_demo.pool import WORLDS, Suspect, audit_document, fleet_document

from trainprove_core.fleet import expand, fleet_from_dict
from trainprove_core.plugins import load_plugins


def _pool(world: str) -> list[Suspect]:
    return [Suspect(f"s-{s}", s, Path("checkpoints") / s) for s in WORLDS[world].sources]


@pytest.mark.parametrize("hard", [False, True], ids=["styled", "hard"])
def test_the_fashion_fleet_has_its_own_defenders_classes_and_real_source(hard):
    doc = fleet_document(_pool("fashion"), hard, world="fashion")
    assert [g["use"] for g in doc["generator"]] == [
        "fashion-ddpm",
        "fashion-cfg",
        "fashion-vae",
        "fashion-gan",
    ]
    assert all(g.get("house_style", True) is not hard for g in doc["generator"])
    assert doc["task"] == {"classes": list(WORLDS["fashion"].classes), "image_size": 16}
    assert doc["fleet"]["known_sources"] == ["fashion-real"]
    calibrated = next(t for t in doc["test"] if t["use"] == "calibrated")
    assert calibrated["references"][-1] == "fashion-real"
    assert {s["truth"] for s in doc["suspect"]} == set(WORLDS["fashion"].sources)
    # Every defender's audit file is a complete audit of the whole pool, and the fleet loads.
    fleet = expand(doc)
    assert [a.generator for a in fleet.audits] == list(WORLDS["fashion"].defenders)
    audit = audit_document("fashion-vae", _pool("fashion"), hard, world="fashion")
    assert audit["generator"]["use"] == "fashion-vae" and len(audit["suspect"]) == 5
    fleet_from_dict(doc, load_plugins(strict=True), source="fleet.toml")


def test_the_digits_world_is_the_default():
    pool = _pool("digits")
    assert fleet_document(pool, False) == fleet_document(pool, False, world="digits")
    assert fleet_document(pool, False)["generator"][0]["use"] == "digits-ddpm"


def test_the_demo_command_offers_the_world():
    trainprove = Path(sys.executable).with_name("trainprove")
    result = subprocess.run([trainprove, "demo", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--world [digits|fashion]" in result.stdout
