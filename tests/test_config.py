from __future__ import annotations

import pytest
from core_test_helpers import base_audit

from trainprove_core.config import config_from_dict, load_config
from trainprove_core.errors import ConfigError


def _doc(**kw):
    return base_audit(suspect=[{"name": "s", "use": "timm", "checkpoint": "model.safetensors"}], **kw)


def test_valid_audit_fills_defaults(plugins, tmp_path):
    cfg = config_from_dict(_doc(), plugins, base_dir=tmp_path)
    assert cfg.tests[0].name == "trainprove" and cfg.tests[0].test.settings["alpha"] == 0.05
    assert cfg.suspects[0].adapter.settings["checkpoint"] == str(tmp_path / "model.safetensors")
    assert cfg.shadow.seed != cfg.validation.seed
    assert cfg.executor.use == "local"


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["generator"].update(use="nope"),
            r"\[generator\] key 'use': unknown generator 'nope'; installed:",
        ),
        (
            lambda d: d["generator"].update(stlye=1.0),
            r"\[generator\] unknown key 'stlye' for generator 'shapes' \(did you mean 'style'\?\)",
        ),
        (lambda d: d["shadow"].update(epochs="ten"), r"\[shadow\] key 'epochs' must be int, got str"),
        (lambda d: d["validation"].pop("batch_size"), r"\[validation\] missing required key 'batch_size'"),
        (lambda d: d["task"].update(classes=["a", "a"]), r"\[task\] class names must be unique"),
        (lambda d: d["suspect"][0].update(truth="guilty"), r"\[suspect s\] key 'truth' must be one of"),
        (
            lambda d: d.update(test=[{"use": "trainprove", "alpha": "0.05"}]),
            r"\[test 1\] key 'alpha' must be float",
        ),
        (lambda d: d.update(tset=[]), r"unknown top-level key 'tset' \(did you mean 'test'\?\)"),
        (
            lambda d: d["shadow"].update(prompt="a {lable}"),
            r"\[shadow\] prompt 'a \{lable\}' is not a valid template",
        ),
        (lambda d: d.update(suspect=[d["suspect"][0], d["suspect"][0]]), r"suspect name 's' is used twice"),
    ],
)
def test_bad_audits_name_the_file_and_key(plugins, change, message):
    doc = _doc()
    change(doc)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(doc, plugins, source="audit.toml")


def test_malformed_toml_names_the_file(plugins, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[task\nclasses = 1\n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_config(path, plugins)
    with pytest.raises(ConfigError, match=r"missing.toml: no such file"):
        load_config(tmp_path / "missing.toml", plugins)
