from __future__ import annotations

import json

import pytest
from core_test_helpers import base_audit

from trainprove_core.config import config_from_dict, load_config, validate_table
from trainprove_core.errors import ConfigError
from trainprove_core.hookspecs import hookimpl
from trainprove_core.records import (
    DecisionTestSpec,
    ExecutorSpec,
    GeneratorSpec,
    Option,
    ShadowTrainerSpec,
    SuspectAdapterSpec,
)


def _doc(**kw):
    return base_audit(suspect=[{"name": "s", "use": "timm", "checkpoint": "model.safetensors"}], **kw)


def test_valid_audit_fills_defaults(plugins, tmp_path):
    cfg = config_from_dict(_doc(), plugins, base_dir=tmp_path)
    assert cfg.tests[0].name == "trainprove" and cfg.tests[0].test.settings["alpha"] == 0.05
    assert cfg.suspects[0].adapter.settings["checkpoint"] == str(tmp_path / "model.safetensors")
    assert cfg.shadow.seed != cfg.validation.seed
    assert cfg.executor.use == "local"
    # [shadow]'s core keys stay the core's: its `seed` is the set's; the trainer's own is `train_seed`.
    assert cfg.trainer.settings["epochs"] == 12 and "per_class" not in cfg.trainer.settings
    doc = _doc()
    doc["shadow"].update(seed=5, train_seed=7)
    cfg = config_from_dict(doc, plugins, base_dir=tmp_path)
    assert (
        cfg.shadow.seed == 5
        and cfg.trainer.settings["train_seed"] == 7
        and "seed" not in cfg.trainer.settings
    )
    assert cfg.public_document()["shadow"]["seed"] == 5


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["generator"].update(use="nope"),
            r"^audit.toml: \[generator\] key 'use': unknown generator 'nope'; installed:",
        ),
        (
            lambda d: d["generator"].update(stlye=1.0),
            r"^audit.toml: \[generator\] unknown key 'stlye' \(did you mean 'style'\?\); "
            r"known keys: use \(core\); batch_size, delay, log, noise, style \(generator 'shapes'\)$",
        ),
        (
            lambda d: d["generator"].update(use="shape"),
            r"^audit.toml: \[generator\] key 'use': unknown generator 'shape'; installed: .*shapes.*\. "
            r"Did you mean 'shapes'\?$",
        ),
        (lambda d: d["shadow"].update(epochs="ten"), r"\[shadow\] key 'epochs' must be int, got str"),
        (lambda d: d["validation"].pop("batch_size"), r"\[validation\] missing required key 'batch_size'"),
        (
            lambda d: d["task"].update(classes=["a", "a"]),
            r"\[task\] key 'classes': class names must be unique",
        ),
        (lambda d: d["suspect"][0].update(truth="guilty"), r"\[suspect s\] key 'truth' must be one of"),
        (
            lambda d: d.update(test=[{"use": "trainprove", "alpha": "0.05"}]),
            r"\[test 1\] key 'alpha' must be float",
        ),
        (lambda d: d.update(tset=[]), r"unknown top-level key 'tset' \(did you mean 'test'\?\)"),
        (
            lambda d: d["shadow"].update(prompt="a {lable}"),
            r"^audit.toml: \[shadow\] key 'prompt': 'a \{lable\}' is not a valid template",
        ),
        (
            lambda d: d["validation"].update(prompt="a photo of {0}"),
            r"^audit.toml: \[validation\] key 'prompt': 'a photo of \{0\}' is not a valid template",
        ),
        (lambda d: d.update(suspect=[d["suspect"][0], d["suspect"][0]]), r"suspect name 's' is used twice"),
        (
            lambda d: d["suspect"][0].update(uze=d["suspect"][0].pop("use")),
            r"^audit.toml: \[suspect s\] unknown key 'uze' \(did you mean 'use'\?\); known keys: "
            r"name, truth, use \(core\), and the keys of the suspect plugin that 'use' names$",
        ),
        (lambda d: d.update(executor={"use": "local", "workers": 4}), r"\[executor\] unknown key 'workers'"),
    ],
)
def test_bad_audits_name_the_file_and_key(plugins, change, message):
    doc = _doc()
    change(doc)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(doc, plugins, source="audit.toml")


def test_a_typo_of_a_core_key_is_an_unknown_key_not_a_missing_one(plugins):
    doc = _doc()
    doc["shadow"]["per_clas"] = doc["shadow"].pop("per_class")
    with pytest.raises(ConfigError) as caught:
        config_from_dict(doc, plugins, source="audit.toml")
    message = str(caught.value)
    assert message.startswith(
        "audit.toml: [shadow] unknown key 'per_clas' (did you mean 'per_class'?); "
        "known keys: per_class, prompt, seed, trainer (core); arch, batch_size, "
    )
    assert message.endswith(" (shadow-trainer 'timm')")
    assert "epochs" in message and "missing" not in message


def test_a_typo_in_the_negative_control_lists_core_and_generator_keys(plugins):
    doc = _doc(negative_control={"use": "shapes", "style": 1.0, "per_clas": 30})
    with pytest.raises(ConfigError) as caught:
        config_from_dict(doc, plugins, source="audit.toml")
    assert str(caught.value) == (
        "audit.toml: [negative_control] unknown key 'per_clas' (did you mean 'per_class'?); known keys: "
        "per_class, seed, use (core); batch_size, delay, log, noise, style (generator 'shapes')"
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["shadow"].update(per_class=0),
            r"^audit.toml: \[shadow\] key 'per_class' must be at least 1 \(got 0\)$",
        ),
        (
            lambda d: d["validation"].update(per_class=0),
            r"^audit.toml: \[validation\] key 'per_class' must be at least 1 \(got 0\)$",
        ),
        (
            lambda d: d["validation"].update(batch_size=0),
            r"^audit.toml: \[validation\] key 'batch_size' must be at least 1 \(got 0\)$",
        ),
        (
            lambda d: d.update(negative_control={"use": "shapes", "per_class": 0}),
            r"^audit.toml: \[negative_control\] key 'per_class' must be at least 1 \(got 0\)$",
        ),
        (
            lambda d: d["task"].update(image_size=2),
            r"^audit.toml: \[task\] key 'image_size' must be at least 4 \(got 2\)$",
        ),
        (
            lambda d: d["shadow"].update(epochs=-1),
            r"^audit.toml: \[shadow\] key 'epochs' must be at least 1 \(got -1\)$",
        ),
    ],
)
def test_bounds_are_checked_when_the_file_is_loaded(plugins, change, message):
    doc = _doc()
    change(doc)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(doc, plugins, source="audit.toml")


def test_option_bounds():
    options = (Option("n", "int", 1, min=1, max=10), Option("x", "float", 0.5, min=0.0, max=1.0))
    assert validate_table({"n": 10, "x": 0}, options, source="f", where="t") == {"n": 10, "x": 0.0}
    with pytest.raises(ConfigError, match=r"^f: \[t\] key 'n' must be at most 10 \(got 11\)$"):
        validate_table({"n": 11}, options, source="f", where="t")
    with pytest.raises(ConfigError, match=r"^f: \[t\] key 'x' must be at least 0 \(got -0.1\)$"):
        validate_table({"x": -0.1}, options, source="f", where="t")
    # An int without bounds must still not be negative; a declared min lifts that.
    with pytest.raises(ConfigError, match=r"key 'k' must be at least 0 \(got -1\)"):
        validate_table({"k": -1}, (Option("k", "int", 0),), source="f", where="t")
    assert validate_table({"k": -5}, (Option("k", "int", 0, min=-10),), source="f", where="t") == {"k": -5}
    with pytest.raises(TypeError, match="min and max apply to int and float"):
        Option("s", "str", "a", min=1)
    with pytest.raises(ValueError, match="above max"):
        Option("n", "int", 1, min=2, max=1)


# ---- a plugin that declares a secret option in every kind of table, and refuses bad settings -----------

SECRET = Option("token", "str", None, secret=True, help="a credential")


def _refusing_test(settings):
    if settings["window"] > settings["span"]:
        raise ValueError(f"`window` ({settings['window']}) is wider than `span` ({settings['span']})")
    if settings["fail"]:
        raise ConfigError("secret-test: refused by the plugin", key="test")
    return object()


def _must_exist(value, settings):
    if value != "here":
        raise ValueError(f"{value!r} is not here (settings seen: {sorted(settings)})")


class SecretPlugin:
    @hookimpl
    def trainprove_generators(self):
        return [
            GeneratorSpec(
                "secret-gen",
                lambda s: None,
                "a generator with a secret",
                (SECRET, Option("where", "str", "here", check=_must_exist)),
            ),
            GeneratorSpec(
                "digit-gen", lambda s: None, "conditioned on the class index", (), ("d0", "d1", "d2")
            ),
        ]

    @hookimpl
    def trainprove_shadow_trainers(self):
        return [ShadowTrainerSpec("secret-trainer", lambda s: None, "a trainer with a secret", (SECRET,))]

    @hookimpl
    def trainprove_suspect_adapters(self):
        return [
            SuspectAdapterSpec("secret-suspect", lambda s, t: None, "an adapter with a secret", (SECRET,))
        ]

    @hookimpl
    def trainprove_decision_tests(self):
        options = (
            SECRET,
            Option("window", "int", 1),
            Option("span", "int", 5),
            Option("fail", "bool", False),
        )
        return [DecisionTestSpec("secret-test", _refusing_test, "a test with a secret", options)]

    @hookimpl
    def trainprove_executors(self):
        return [ExecutorSpec("secret-executor", lambda s: None, "an executor with a secret", (SECRET,))]


@pytest.fixture
def secret_plugins(plugins):
    plugins.register(SecretPlugin(), "secret-plugin", "tests")
    return plugins


def _secret_doc():
    return base_audit(
        generator={"use": "secret-gen", "token": "g-123"},
        shadow={"prompt": "a {label}", "per_class": 2, "trainer": "secret-trainer", "token": "t-123"},
        suspect=[{"name": "s", "use": "secret-suspect", "token": "s-123"}],
        test=[{"use": "secret-test", "token": "x-123"}],
        executor={"use": "secret-executor", "token": "e-123"},
        negative_control={"use": "secret-gen", "token": "n-123", "per_class": 3},
    )


def test_secret_options_are_masked_in_every_table(secret_plugins):
    cfg = config_from_dict(_secret_doc(), secret_plugins, source="audit.toml")
    public = cfg.public_document()
    text = json.dumps(public)
    assert "-123" not in text, text
    assert public["generator"]["token"] == "<secret>"
    assert public["shadow"]["token"] == "<secret>" and public["shadow"]["per_class"] == 2
    assert public["suspect"][0]["token"] == "<secret>" and public["suspect"][0]["name"] == "s"
    assert public["test"][0]["token"] == "<secret>"
    assert public["executor"]["token"] == "<secret>"
    assert public["negative_control"]["token"] == "<secret>" and public["negative_control"]["per_class"] == 3
    # The settings the plugins get keep the values.
    assert cfg.tests[0].test.settings["token"] == "x-123" and cfg.executor.settings["token"] == "e-123"
    assert (
        cfg.negative_control.settings["token"] == "n-123" and "per_class" not in cfg.negative_control.settings
    )
    # The document itself is untouched, and tables the file leaves out stay out.
    assert cfg.document["test"][0]["token"] == "x-123"
    doc = _secret_doc()
    del doc["test"], doc["executor"]
    public = config_from_dict(doc, secret_plugins).public_document()
    assert "test" not in public and "executor" not in public


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda d: d["test"][0].update(window=9),
            r"^audit.toml: \[test 1\] `window` \(9\) is wider than `span` \(5\)$",
        ),
        (
            lambda d: d["test"][0].update(fail=True),
            r"^audit.toml: \[test 1\] secret-test: refused by the plugin$",
        ),
        (
            lambda d: d["generator"].update(where="there"),
            r"^audit.toml: \[generator\] key 'where': 'there' is not here "
            r"\(settings seen: \['token', 'where'\]\)$",
        ),
        (
            lambda d: d["negative_control"].update(where="there"),
            r"^audit.toml: \[negative_control\] key 'where': 'there' is not here",
        ),
    ],
)
def test_plugins_refuse_settings_when_the_file_is_loaded(secret_plugins, change, message):
    doc = _secret_doc()
    change(doc)
    with pytest.raises(ConfigError, match=message):
        config_from_dict(doc, secret_plugins, source="audit.toml")


def test_a_baseline_that_refuses_its_settings_is_a_load_error(plugins):
    doc = _doc(test=[{"use": "trainprove"}, {"use": "meta-classifier", "sources": []}])
    with pytest.raises(ConfigError, match=r"^audit.toml: \[test 2\] meta-classifier: `sources` must name"):
        config_from_dict(doc, plugins, source="audit.toml")


@pytest.mark.parametrize(
    "classes, detail",
    [
        (["d0", "d2", "d1"], r"the same names in another order"),
        (["d0", "d1"], r"missing d2"),
        (["d0", "d1", "x"], r"missing d2; unknown to it: x"),
    ],
)
def test_task_classes_must_match_a_class_conditioned_generator(secret_plugins, classes, detail):
    doc = _doc(generator={"use": "digit-gen"})
    doc["task"]["classes"] = classes
    expected = (
        rf"^audit.toml: \[task\] key 'classes' must be, in this order, the classes generator 'digit-gen' of "
        rf"\[generator\] draws by class index: \['d0', 'd1', 'd2'\]; got .* \({detail}\)$"
    )
    with pytest.raises(ConfigError, match=expected):
        config_from_dict(doc, secret_plugins, source="audit.toml")
    doc["task"]["classes"] = ["d0", "d1", "d2"]
    config_from_dict(doc, secret_plugins, source="audit.toml")
    doc["negative_control"] = {"use": "digit-gen"}
    config_from_dict(doc, secret_plugins, source="audit.toml")
    doc["task"]["classes"] = ["d0", "d1", "d3"]
    doc["generator"] = {"use": "shapes"}
    with pytest.raises(
        ConfigError,
        match=r"\[task\] key 'classes' must be, .* generator 'digit-gen' of "
        r"\[negative_control\]",
    ):
        config_from_dict(doc, secret_plugins, source="audit.toml")


def test_the_embedded_digit_generators_declare_their_classes(plugins):
    digits = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    doc = _doc(generator={"use": "digits-gmm"})
    doc["task"] = {"classes": digits, "image_size": 8}
    config_from_dict(doc, plugins, source="audit.toml")
    doc["task"]["classes"] = [str(i) for i in range(10)]
    with pytest.raises(ConfigError) as caught:
        config_from_dict(doc, plugins, source="audit.toml")
    assert str(caught.value) == (
        "audit.toml: [task] key 'classes' must be, in this order, the classes generator 'digits-gmm' of "
        f"[generator] draws by class index: {digits}; got {doc['task']['classes']}"
    )


def test_malformed_toml_names_the_file(plugins, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[task\nclasses = 1\n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_config(path, plugins)
    with pytest.raises(ConfigError, match=r"missing.toml: no such file"):
        load_config(tmp_path / "missing.toml", plugins)
