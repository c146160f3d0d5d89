"""Load-time checks: no plugin key hidden by a core key, files that are not UTF-8 TOML, numbers that are
not finite, devices, URLs, per-channel statistics, sizes the machine cannot hold, `trainprove check`."""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner
from core_test_helpers import base_audit

from trainprove_core.cli import cli
from trainprove_core.config import check_disk, check_memory, config_from_dict, load_config, shadowed_options
from trainprove_core.errors import ConfigError
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import Option, ShadowTrainerSpec, SuspectAdapterSpec


def _doc(**kw):
    return base_audit(suspect=[{"name": "s", "use": "timm", "checkpoint": "model.safetensors"}], **kw)


def test_no_installed_plugin_declares_a_key_that_a_core_key_of_its_table_takes(plugins):
    """A core key (`[shadow] seed`, the shadow set's) and a plugin's option of the same name in the same
    table: the option could never be set. The timm trainer's seed is `train_seed` for that reason."""
    assert shadowed_options(plugins.all_registered()) == []
    timm = {o.name for o in plugins.shadow_trainer("timm").spec.options}
    assert "train_seed" in timm and "seed" not in timm


class Shadowing:
    @hookimpl
    def trainprove_shadow_trainers(self):
        return [ShadowTrainerSpec("seedy", lambda s: None, "declares seed", (Option("seed", "int", 0),))]


def test_a_plugin_option_hidden_by_a_core_key_is_a_listed_problem(plugins):
    plugins.register(Shadowing(), "seedy-plugin", "tests")
    lines = shadowed_options(plugins.all_registered())
    assert len(lines) == 2 and all("shadow-trainer 'seedy'" in line and "'seed'" in line for line in lines)
    assert "[shadow]" in lines[0] and "[positive_control]" in lines[1]  # both tables a trainer is used in
    assert plugins.problems_of("seedy-plugin") == lines


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\xef\xbb\xbfseed = 0\n", r"^bad.toml: starts with a UTF-8 byte-order mark \(BOM\), which TOML"),
        (
            "seed = 0\n# caf\u00e9\n".encode("latin-1"),
            r"^bad.toml: is not UTF-8: byte 0xe9 at line 2, column 6 .*Latin-1",
        ),
        ("seed = 0\n".encode("utf-16"), r"^bad.toml: starts with a UTF-16 byte-order mark"),
    ],
)
def test_files_that_are_not_utf8_say_so(plugins, tmp_path, data, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_bytes(data)
    with pytest.raises(ConfigError, match=message):
        load_config("bad.toml", plugins)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(seed=-1), r"^a.toml: top-level key 'seed' must be at least 0 \(got -1\)$"),
        (
            lambda d: d["shadow"].update(lr=math.nan),
            r"\[shadow\] key 'lr' must be a finite number \(got nan\)",
        ),
        (lambda d: d["shadow"].update(lr=0.0), r"\[shadow\] key 'lr' must be above 0 \(got 0.0\)"),
        (lambda d: d["shadow"].update(crop_scale=[math.inf, 1.0]), r"key 'crop_scale' must hold finite"),
        (
            lambda d: d["shadow"].update(device="cuda:7"),
            r"\[shadow\] key 'device': 'cuda:7': this machine has",
        ),
        (
            lambda d: d["shadow"].update(arch="resnet1"),
            r"key 'arch': timm has no architecture 'resnet1'; did",
        ),
        (lambda d: d["suspect"][0].update(std=[0.0, 0.0, 0.0]), r"\[suspect s\] key 'std': every value must"),
        (lambda d: d["suspect"][0].update(mean=[0.5, 0.5]), r"\[suspect s\] key 'mean': needs one value per"),
        (lambda d: d["task"].update(image_size=100_000), r"\[task\] key 'image_size' must be at most 4096"),
        (
            lambda d: d.update(test=[]),
            r"^a.toml: \[test\] needs at least one \[\[test\]\] table, got an empty",
        ),
        (lambda d: d.update(test=5), r"^a.toml: \[test\] must be an array of tables"),
        (
            lambda d: d.update(task=[{"classes": ["a", "b"], "image_size": 8}]),
            r"\[task\] must be one \[task\]",
        ),
        (lambda d: d["suspect"][0].update(name=""), r"^a.toml: \[suspect 1\] key 'name': must not be empty$"),
        (lambda d: d["suspect"][0].update(name="shadow"), r"\[suspect shadow\] key 'name': 'shadow' is the"),
        (lambda d: d.update(test=[{"use": "trainprove", "name": " t"}]), r"\[test 1\] key 'name': ' t' has"),
        (
            lambda d: d["validation"].update(batch_size=300),
            r"^a.toml: \[validation\] key .batch_size. \(300\) puts all 300 validation images .* one batch",
        ),
        (
            lambda d: d.update(
                test=[{"use": "calibrated", "references": ["a", "b"], "recipes": {"r": {"share": 2}}}]
            ),
            r"^a.toml: \[test 1\] key 'recipes': recipe 'r': `share` must be a number above 0 and at most 1",
        ),
        (lambda d: d["shadow"].update(prompt="a photo"), r"\[shadow\] key 'prompt': 'a photo' does not name"),
        (
            lambda d: d["shadow"].update(per_class=10**12),
            r"^a.toml: \[shadow\] key 'per_class': this audit holds at least .* PiB of images in memory",
        ),
    ],
)
def test_values_no_audit_could_use_are_refused_when_the_file_is_loaded(plugins, change, message):
    doc = _doc()
    change(doc)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(doc, plugins, source="a.toml")


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a url", "must be an http:// or https:// URL (no scheme)"),
        ("", "got an empty string"),
        ("ftp://host/x", "(scheme 'ftp')"),
        ("http://", "it needs a host"),
        ("http://host:99999/", "is not a valid URL"),
    ],
)
def test_http_urls_are_checked_when_the_file_is_loaded(plugins, url, message):
    doc = base_audit(suspect=[{"name": "api", "use": "http", "url": url, "model": "m"}])
    with pytest.raises(ConfigError) as caught:
        config_from_dict(doc, plugins, source="a.toml")
    assert str(caught.value).startswith("a.toml: [suspect api] key 'url': ") and message in str(caught.value)


class Validating:
    @hookimpl
    def trainprove_suspect_adapters(self):
        def validate(settings):
            if settings["low"] > settings["high"]:
                raise ValueError(f"`low` ({settings['low']}) is above `high` ({settings['high']})")
            if settings["high"] == 13:
                raise RuntimeError("a bug in the plugin")

        options = (Option("low", "int", 0), Option("high", "int", 5))
        return [SuspectAdapterSpec("ranged", lambda s, t: None, "a range", options, validate=validate)]


def test_a_spec_validates_its_settings_as_a_whole(plugins):
    plugins.register(Validating(), "validating", "tests")
    doc = base_audit(suspect=[{"name": "r", "use": "ranged", "low": 7}])
    with pytest.raises(ConfigError, match=r"^a.toml: \[suspect r\] `low` \(7\) is above `high` \(5\)$"):
        config_from_dict(doc, plugins, source="a.toml")
    doc["suspect"][0].update(low=0, high=13)  # a plugin's own fault: named, not a traceback
    with pytest.raises(
        ConfigError, match=r"the settings check of suspect 'ranged' \(tests\) failed: Runtime"
    ):
        config_from_dict(doc, plugins, source="a.toml")
    doc["suspect"][0]["high"] = 6
    config_from_dict(doc, plugins, source="a.toml")


def test_memory_and_disk_bounds_name_the_largest_set(plugins, tmp_path):
    cfg = config_from_dict(_doc(), plugins, source="a.toml")  # 180 + 300 images of 16 px
    check_memory(cfg, available=10**9)
    with pytest.raises(
        ConfigError, match=r"^a.toml: \[validation\] key 'per_class': .* more than this machine's"
    ):
        check_memory(cfg, available=100_000)
    check_disk(cfg, tmp_path / "store", free=10**9)
    with pytest.raises(
        ConfigError, match=r"\[validation\] key 'per_class': .* \(.*store\) .*has 1000 bytes free"
    ):
        check_disk(cfg, tmp_path / "store", free=1000)


def test_trainprove_check_says_ok_or_names_the_key_and_writes_nothing(plugins, tmp_path):
    from test_fuzz_audit_files import _checkpoint, to_toml

    checkpoint = _checkpoint(tmp_path, ["disc", "ring", "hbar"], 16)
    doc = base_audit(suspect=[{"name": "s", "use": "timm", "checkpoint": str(checkpoint)}])
    path = tmp_path / "a.toml"
    path.write_text(to_toml(doc), encoding="utf-8")
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["check", str(path), "--store", str(store)], obj={"plugins": plugins})
    assert result.exit_code == 0 and "ok: 1 suspect(s), 1 decision test(s)" in result.output, result.output
    # and what the audit will do: every set, model and query
    assert "images made: shadow 180; validation 300" in result.output, result.output
    assert "models trained: the shadow" in result.output
    assert "each suspect answers 300 images" in result.output
    doc["shadow"]["epochs"] = 0
    path.write_text(to_toml(doc), encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", str(path), "--store", str(store)], obj={"plugins": plugins})
    assert result.exit_code == 2 and f"{path}: [shadow] key 'epochs' must be at least 1" in result.output
    assert not store.exists()
