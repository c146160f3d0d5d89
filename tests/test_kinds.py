"""One row per kind of registration (`records.KINDS`): the hooks, the spec types, the audit-file tables,
the listing and the typed accessors all agree with it."""

from __future__ import annotations

import inspect

import pytest

from trainprove_core import hookspecs
from trainprove_core.config import TABLES
from trainprove_core.errors import PluginError
from trainprove_core.glyphs import GlyphPlugin
from trainprove_core.plugins import HOOK_NAMES, REGISTRY_HOOKS
from trainprove_core.records import KIND, KINDS
from trainprove_core.testing import isolated_plugins


def test_every_registry_hook_is_one_row_and_returns_that_rows_spec_type():
    takes_nothing = {
        name for name in HOOK_NAMES if not inspect.signature(getattr(hookspecs, name)).parameters
    }
    assert takes_nothing == REGISTRY_HOOKS == {kind.hook for kind in KINDS}
    for kind in KINDS:
        returns = inspect.signature(getattr(hookspecs, kind.hook)).return_annotation
        assert returns == f"list[{kind.spec.__name__}]", kind


def test_each_kind_owns_one_audit_file_table_that_selects_it():
    owned = {t.name: t for t in TABLES if t.kind is not None and t.kind.table == t.name}
    assert sorted(owned) == sorted(kind.table for kind in KINDS)
    for kind in KINDS:
        table = owned[kind.table]
        assert table.kind is kind and table.many == kind.many and table.use_key == kind.use_key
    assert KIND["suspect"].selector == "[[suspect]]" and KIND["shadow-trainer"].selector == "[shadow]"


def test_typed_accessors_return_the_registration_of_their_kind():
    plugins = isolated_plugins((GlyphPlugin(), "glyphs"))
    assert plugins.generator("glyphs").spec.name == "glyphs"
    assert plugins.shadow_trainer("pixel-logistic").kind == "shadow-trainer"
    assert plugins.suspect_adapter("pixel-logistic").kind == "suspect"
    assert plugins.executor("local").distribution == "trainprove"
    with pytest.raises(PluginError, match="unknown test 'trainprove'"):
        plugins.decision_test("trainprove")
    with pytest.raises(ValueError, match="no kind 'generators'"):
        plugins.get("generators", "glyphs")
