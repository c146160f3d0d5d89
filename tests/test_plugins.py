"""Plugin discovery through real entry points: temporary distributions on sys.path (or on PYTHONPATH for
a `trainprove` process), found by importlib.metadata exactly as installed third-party packages are.

Loading never hides or breaks a plugin: a broken one is listed and skipped, two with one entry-point
name are both loaded, two registering one name are an error only where that name is used, and
TRAINPROVE_DISABLE_PLUGINS / TRAINPROVE_LOAD_PLUGINS choose what loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fake_dists import (
    COMMAND_ONLY,
    DECISION_TEST,
    GENERATOR_AND_TEST,
    JUNK,
    MISSPELT,
    OBSERVER_ONLY,
    RAISING,
    RAISING_COMMANDS,
    RICH_OPTIONS,
    run_trainprove,
    write_distribution,
)

from trainprove_core.errors import PluginError
from trainprove_core.listing import describe
from trainprove_core.plugins import load_plugins


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for fake distributions (and on PYTHONPATH in `run_trainprove`)."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    for variable in ("TRAINPROVE_DISABLE_PLUGINS", "TRAINPROVE_LOAD_PLUGINS", "TRAINPROVE_STRICT_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)
    yield folder
    for name in [m for m in sys.modules if m.startswith("tpx_")]:
        del sys.modules[name]


@pytest.fixture
def fake_distribution(site):
    def make(dist: str, module: str, source: str, entry_name: str | None = None) -> None:
        write_distribution(site, dist, module, source, {entry_name or dist: module})

    return make


def test_third_party_plugin_is_found_and_listed(fake_distribution):
    fake_distribution("tpx-coin", "tpx_coin", DECISION_TEST.format(name="coin-flip"))
    plugins = load_plugins(strict=True)
    reg = plugins.get("test", "coin-flip")
    assert (reg.distribution, reg.version) == ("tpx-coin", "1.2.3")
    row = next(r for r in describe(plugins) if r["name"] == "coin-flip")
    assert row["kind"] == "test" and row["distribution"] == "tpx-coin"


def test_broken_plugin_is_reported_and_skipped(fake_distribution):
    fake_distribution("tpx-broken", "tpx_broken", "raise ImportError('needs libfoo')\n")
    plugins = load_plugins(strict=False)
    assert [f.plugin for f in plugins.failures] == ["tpx-broken"]
    assert "needs libfoo" in plugins.failures[0].error
    assert "trainprove" in plugins.names("test")  # everything else still loads
    assert plugins.plugins["tpx-broken"].status == "failed"
    with pytest.raises(PluginError, match="unknown test 'x'.*failed to load: tpx-broken"):
        plugins.get("test", "x")


def test_strict_mode_makes_a_broken_plugin_an_error(fake_distribution, monkeypatch):
    fake_distribution("tpx-broken", "tpx_broken", "raise ImportError('needs libfoo')\n")
    monkeypatch.setenv("TRAINPROVE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="'tpx-broken' from tpx-broken 1.2.3 failed to load"):
        load_plugins()


def test_a_registry_hook_that_raises_or_returns_junk_is_a_listed_failure(fake_distribution):
    fake_distribution("tpx-raising", "tpx_raising", RAISING)
    fake_distribution("tpx-junk", "tpx_junk", JUNK)
    plugins = load_plugins(strict=False)
    errors = {f.plugin: f.error for f in plugins.failures}
    assert "cannot list my generators" in errors["tpx-raising"]
    assert "returned str from the generator hook" in errors["tpx-junk"]
    assert plugins.pm.get_plugin("tpx-junk") is None  # unregistered: its other hooks are not called either
    assert "digits-real" in plugins.names("generator") or "trainprove" in plugins.names("test")
    with pytest.raises(PluginError, match="'tpx-junk' from tpx-junk 1.2.3 failed to load"):
        load_plugins(strict=True)


def test_a_command_hook_that_raises_is_a_listed_failure_and_the_cli_still_starts(site):
    write_distribution(site, "tpx-half", "tpx_half", RAISING_COMMANDS)
    write_distribution(site, "tpx-hello", "tpx_hello", COMMAND_ONLY)
    help_text = run_trainprove(site, "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "hello" in help_text.stdout and "half" not in help_text.stdout  # its half-added command goes
    records = {
        (r["kind"], r["name"]): r for r in json.loads(run_trainprove(site, "plugins", "--json").stdout)
    }
    assert (
        records[("plugin", "tpx-half")]["status"] == "failed"
        and "my command hook is broken" in records[("failed", "tpx-half")]["error"]
    )
    assert ("test", "half-rule") not in records  # unregistered, like a plugin whose registry hook raises
    strict = run_trainprove(site, "--help", TRAINPROVE_STRICT_PLUGINS="1")
    assert (
        strict.returncode == 2
        and "'tpx-half' from tpx-half 1.2.3 failed to add its commands" in strict.stderr
    )


def test_a_misspelt_hook_is_a_listed_problem(fake_distribution):
    fake_distribution("tpx-typo", "tpx_typo", MISSPELT)
    plugins = load_plugins(strict=True)
    assert plugins.hooks_of("tpx-typo") == ["trainprove_generator"]
    assert any(
        "implements trainprove_generator, which trainprove never calls" in p for p in plugins.all_problems()
    )


def test_two_plugins_claiming_one_name_is_an_error_naming_both_only_where_it_is_used(fake_distribution):
    fake_distribution(
        "tpx-dupe", "tpx_dupe", GENERATOR_AND_TEST.format(generator="g", test="trainprove", dist="x")
    )
    plugins = load_plugins()  # loading succeeds: nothing uses the name yet
    assert "trainprove" not in plugins.names("test")  # names() holds what get() resolves
    assert {"g", "trainprove-ent"} <= set(plugins.names("generator") + plugins.names("test"))
    with pytest.raises(
        PluginError,
        match="the test 'trainprove' is registered by 2 plugins: plugin 'tpx-dupe' from distribution "
        "tpx-dupe 1.2.3 and plugin 'trainprove-paper' from distribution trainprove-paper",
    ):
        plugins.get("test", "trainprove")
    assert plugins.get("generator", "g").distribution == "tpx-dupe"  # the plugin's other names still work
    assert plugins.get("test", "trainprove-ent").distribution == "trainprove-paper"
    rows = [r for r in describe(plugins) if r["kind"] == "test" and r["name"] == "trainprove"]
    assert sorted(r["distribution"] for r in rows) == ["tpx-dupe", "trainprove-paper"]
    assert all(r["conflict"] for r in rows)
    for plugin in ("tpx-dupe", "trainprove-paper"):
        assert any("registered by 2 plugins" in p for p in plugins.problems_of(plugin))


def test_a_conflict_as_a_user_meets_it(site):
    for dist, module in (("tpx-a", "tpx_a"), ("tpx-b", "tpx_b")):
        write_distribution(
            site,
            dist,
            module,
            GENERATOR_AND_TEST.format(generator="same-gen", test=f"{dist}-test", dist=dist),
        )
    assert run_trainprove(site, "--help").returncode == 0
    listing = run_trainprove(site, "plugins")
    assert listing.returncode == 0, listing.stderr
    problems = listing.stdout.split("\nProblems\n")[1]
    assert "the generator 'same-gen' is registered by 2 plugins" in problems
    assert "tpx-a" in problems and "tpx-b" in problems and "TRAINPROVE_DISABLE_PLUGINS=tpx-a" in problems
    records = json.loads(run_trainprove(site, "plugins", "--json").stdout)
    same = [r for r in records if r["name"] == "same-gen"]
    assert {r["distribution"] for r in same} == {"tpx-a", "tpx-b"} and all(r["conflict"] for r in same)

    audit = site / "audit.toml"
    audit.write_text(
        '[task]\nclasses = ["a", "b"]\nimage_size = 16\n[generator]\nuse = "same-gen"\n'
        '[shadow]\nprompt = "a {label}"\nper_class = 1\n[validation]\nprompt = "x {label}"\n'
        'per_class = 1\nbatch_size = 1\n[[suspect]]\nname = "s"\nuse = "timm"\ncheckpoint = "m"\n'
    )
    result = run_trainprove(site, "audit", str(audit), "--out", str(site / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "[generator] key 'use': the generator 'same-gen' is registered by 2 plugins" in result.stderr
    assert "did you mean" not in result.stderr.lower()
    assert "distribution tpx-a 1.2.3" in result.stderr and "distribution tpx-b 1.2.3" in result.stderr
    # the way out the message offers works
    fixed = run_trainprove(site, "plugins", "--json", TRAINPROVE_DISABLE_PLUGINS="tpx-a")
    same = [r for r in json.loads(fixed.stdout) if r["name"] == "same-gen"]
    assert [(r["distribution"], r["conflict"]) for r in same] == [("tpx-b", False)]


def test_one_entry_point_name_in_two_distributions_loads_both(site):
    for dist, module in (("tpx-a", "tpx_a"), ("tpx-b", "tpx_b")):
        write_distribution(site, dist, module, DECISION_TEST.format(name=f"{dist}-rule"), {"shared": module})
    plugins = load_plugins(strict=True)
    assert plugins.get("test", "tpx-a-rule").plugin == "tpx-a:shared"
    assert plugins.get("test", "tpx-b-rule").plugin == "tpx-b:shared"
    warning = next(w for w in plugins.warnings if "'shared'" in w)
    assert "tpx-a 1.2.3" in warning and "tpx-b 1.2.3" in warning
    listing = run_trainprove(site, "plugins")
    assert "tpx-a:shared (tpx-a)" in listing.stdout and "tpx-b:shared (tpx-b)" in listing.stdout
    assert "entry point name 'shared' is used by 2 distributions" in listing.stdout
    # either can be switched off by its distribution, both by the shared entry-point name
    only_b = run_trainprove(site, "plugins", "--json", TRAINPROVE_DISABLE_PLUGINS="tpx-a")
    names = {r["name"] for r in json.loads(only_b.stdout) if r["kind"] == "test"}
    assert "tpx-b-rule" in names and "tpx-a-rule" not in names
    neither = run_trainprove(site, "plugins", "--json", TRAINPROVE_DISABLE_PLUGINS="shared")
    assert not {"tpx-a-rule", "tpx-b-rule"} & {r["name"] for r in json.loads(neither.stdout)}


def test_disable_plugins_by_distribution_or_entry_point_name(fake_distribution, monkeypatch):
    fake_distribution("tpx-coin", "tpx_coin", DECISION_TEST.format(name="coin-flip"), entry_name="coin")
    monkeypatch.setenv("TRAINPROVE_DISABLE_PLUGINS", "TPX_Coin, trainprove-baselines,no-such-plugin")
    plugins = load_plugins(strict=True)
    assert "coin-flip" not in plugins.names("test") and "welch" not in plugins.names("test")
    assert "trainprove" in plugins.names("test")
    assert plugins.plugins["coin"].status == "disabled"
    assert "TRAINPROVE_DISABLE_PLUGINS" in plugins.plugins["coin"].reason
    assert "tpx_coin" not in sys.modules  # a disabled plugin is not even imported
    assert any("'no-such-plugin', which no installed plugin matches" in w for w in plugins.warnings)
    with pytest.raises(
        PluginError,
        match=r"unknown test 'coin-flip'.*Plugins not loaded \(TRAINPROVE_DISABLE_PLUGINS or "
        r"TRAINPROVE_LOAD_PLUGINS\): coin, trainprove-baselines\.$",
    ):
        plugins.get("test", "coin-flip")
    monkeypatch.setenv("TRAINPROVE_DISABLE_PLUGINS", "coin")  # the entry-point name works too
    assert "coin-flip" not in load_plugins(strict=True).names("test")


def test_load_plugins_loads_only_the_named_ones_and_the_core(fake_distribution, monkeypatch):
    fake_distribution("tpx-coin", "tpx_coin", DECISION_TEST.format(name="coin-flip"))
    monkeypatch.setenv("TRAINPROVE_LOAD_PLUGINS", "tpx-coin,trainprove_paper")
    plugins = load_plugins(strict=True)
    assert plugins.names("test") == ["coin-flip", "trainprove", "trainprove-ent", "trainprove-sim"]
    assert plugins.names("executor") == ["local", "processes"]  # the core always loads
    assert plugins.names("generator") == []
    assert "not named in TRAINPROVE_LOAD_PLUGINS" in plugins.plugins["trainprove-timm"].reason
    monkeypatch.setenv("TRAINPROVE_LOAD_PLUGINS", "")
    plugins = load_plugins(strict=True)
    assert [r.name for r in plugins.all_registered()] == ["local", "processes"]


def test_listing_shows_every_plugin_with_its_hooks_and_filters_by_hook(site):
    write_distribution(site, "tpx-hello", "tpx_hello", COMMAND_ONLY)
    write_distribution(site, "tpx-watch", "tpx_watch", OBSERVER_ONLY)
    listing = run_trainprove(site, "plugins")
    assert listing.returncode == 0, listing.stderr
    plugins_section = listing.stdout.split("\nPlugins\n")[1]
    assert "tpx-hello" in plugins_section and "trainprove_commands (command: hello)" in plugins_section
    assert "tpx-watch" in plugins_section and "trainprove_after_audit" in plugins_section
    assert "core (trainprove)" in plugins_section
    try:
        import trainprove_demo  # noqa: F401
    except ImportError:
        pass
    else:
        assert "trainprove_commands (command: demo)" in plugins_section

    only = run_trainprove(site, "plugins", "--hook", "commands")
    assert "tpx-hello" in only.stdout and "tpx-watch" not in only.stdout
    assert "Generators" not in only.stdout and "trainprove-diffusers" not in only.stdout
    generators = run_trainprove(site, "plugins", "--hook", "trainprove_generators", "--json").stdout
    kinds = {r["kind"] for r in json.loads(generators)}
    assert kinds <= {"generator", "plugin"}
    for record in json.loads(run_trainprove(site, "plugins", "--json", "--hook", "after_audit").stdout):
        assert record["kind"] == "plugin" and "trainprove_after_audit" in record["hooks"]
    bad = run_trainprove(site, "plugins", "--hook", "nope")
    assert bad.returncode == 2 and "no hook named 'nope'" in bad.stderr


def test_plugins_name_prints_every_key_of_it(site):
    write_distribution(site, "tpx-rich", "tpx_rich", RICH_OPTIONS)
    for name in ("rich", "tpx-rich", "tpx_rich"):  # a registered name, a distribution, spelled either way
        result = run_trainprove(site, "plugins", name)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        row = {line.split()[0]: line for line in lines if line.startswith(" " * 8) and line[8] != " "}
        assert row["endpoint"].split()[1:3] == ["str", "required"]
        assert row["mode"].split()[1:] == ["str", '"fast"', "one", "of", '"fast",', '"careful"']
        assert "secret" in row["token_env"] and row["token_env"].split()[2] == "none"
        assert row["mean"].split()[2:4] == ["[0.5,", "0.25]"]
        assert "{ a = 1 }" in row["extra"]
        assert row["share"].split()[1:] == ["float", "0.5", "from", "0.0", "to", "1.0"]
        assert "where the model answers" in result.stdout
        assert "a deliberately long help line" in result.stdout
        assert "entry point: tpx-rich = 'tpx_rich'" in result.stdout
    assert "([task] classes must be these): zero, one" in run_trainprove(site, "plugins", "two-digits").stdout
    missing = run_trainprove(site, "plugins", "no-such-thing")
    assert (
        missing.returncode == 2
        and "no plugin, distribution or registered name 'no-such-thing'" in missing.stderr
    )
    everything = run_trainprove(site, "plugins", "--options").stdout
    assert "where the model answers" in everything and "local" in everything


def test_json_keeps_the_old_fields_and_adds_options_and_plugins(site):
    write_distribution(site, "tpx-rich", "tpx_rich", RICH_OPTIONS)
    write_distribution(site, "tpx-hello", "tpx_hello", COMMAND_ONLY)
    write_distribution(site, "tpx-broken", "tpx_broken", "raise ImportError('needs libfoo')\n")
    result = run_trainprove(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert isinstance(records, list)
    for record in records:
        assert {"name", "kind", "distribution", "version", "description"} <= set(record)
    rich = next(r for r in records if r["name"] == "rich")
    assert (rich["kind"], rich["distribution"], rich["version"], rich["plugin"]) == (
        "suspect",
        "tpx-rich",
        "1.2.3",
        "tpx-rich",
    )
    options = {o["name"]: o for o in rich["options"]}
    assert options["endpoint"] == {
        "name": "endpoint",
        "type": "str",
        "default": None,
        "required": True,
        "help": "where the model answers",
        "choices": None,
        "secret": False,
        "min": None,
        "max": None,
        "exclusive_min": False,
    }
    assert options["mode"]["choices"] == ["fast", "careful"] and options["mode"]["default"] == "fast"
    assert options["token_env"]["secret"] is True and options["token_env"]["required"] is False
    assert options["mean"]["default"] == [0.5, 0.25] and options["extra"]["default"] == {"a": 1}
    assert (options["share"]["min"], options["share"]["max"]) == (0.0, 1.0)
    assert next(r for r in records if r["name"] == "two-digits")["classes"] == ["zero", "one"]
    assert "classes" not in rich
    plugins = {r["name"]: r for r in records if r["kind"] == "plugin"}
    assert plugins["tpx-hello"]["hooks"] == ["trainprove_commands"]
    assert plugins["tpx-hello"]["commands"] == ["hello"] and plugins["tpx-hello"]["registers"] == []
    assert plugins["tpx-rich"]["registers"] == [
        {"kind": "generator", "name": "two-digits"},
        {"kind": "suspect", "name": "rich"},
    ]
    assert plugins["core"]["distribution"] == "trainprove" and plugins["core"]["status"] == "loaded"
    assert plugins["tpx-broken"]["status"] == "failed" and "needs libfoo" in plugins["tpx-broken"]["reason"]
    failed = [r for r in records if r["kind"] == "failed"]
    assert [(r["name"], r["distribution"], r["version"]) for r in failed] == [
        ("tpx-broken", "tpx-broken", "1.2.3")
    ]
    assert "needs libfoo" in failed[0]["error"]


def test_every_listing_fits_100_columns(site):
    write_distribution(site, "tpx-rich", "tpx_rich", RICH_OPTIONS)
    write_distribution(site, "tpx-broken", "tpx_broken", "raise ImportError('needs libfoo ' * 20)\n")
    for columns in ("300", "100", "80"):
        for args in (("plugins", "--options"), ("plugins", "rich", "core")):
            out = run_trainprove(site, *args, COLUMNS=columns).stdout
            longest = max(out.splitlines(), key=len)
            assert len(longest) <= min(100, int(columns)), longest


def test_trace_shows_every_registry_hook_call_through_pluggy(fake_distribution, site):
    fake_distribution("tpx-coin", "tpx_coin", DECISION_TEST.format(name="coin-flip"))
    result = run_trainprove(site, "plugins", TRAINPROVE_TRACE_PLUGINS="1")
    assert result.returncode == 0, result.stderr
    assert "[trainprove] trainprove_decision_tests() -> tpx-coin" in result.stderr
    assert "[trainprove] trainprove_decision_tests returned [DecisionTestSpec 'coin-flip']" in result.stderr
    assert "[trainprove] trainprove_commands(cli=" in result.stderr


def test_help_does_not_import_the_listing_or_the_docs_generator():
    code = (
        "import sys\nfrom trainprove_core import cli\nsys.argv = ['trainprove', '--help']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in sys.modules if m in "
        "('trainprove_core.listing', 'trainprove_core.docgen', 'numpy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "LOADED []" in out
