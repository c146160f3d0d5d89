"""What an audit file may hold: the core's options of every table, `TABLES`, and the dataclasses a
loaded file becomes (`AuditConfig` and its parts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..checks import not_blank, prompt_template
from ..records import DECISIONS, KIND, Kind, Option
from ..task import Task

SEED_MAX = 2**32 - 1
"""The largest seed: every seed is an unsigned 32-bit number (numpy's and torch's seeds take it)."""
MAX_IMAGE_SIZE = 4096
SEED = Option("seed", "int", 0, max=SEED_MAX, help="global seed; each set's seed derives from it unless set")
TASK_OPTIONS = (
    Option("classes", "list[str]", help="class names in the suspect's index order"),
    Option(
        "image_size", "int", min=4, max=MAX_IMAGE_SIZE, help="side of the square images the suspect takes"
    ),
)


SET_OPTIONS = (
    Option("prompt", "str", help="prompt template; {label} is the class name", check=prompt_template),
    Option("per_class", "int", min=1, help="images per class"),
    Option("seed", "int", None, max=SEED_MAX, help="seed of this set (default: derived from the audit seed)"),
)
SHADOW_OPTIONS = SET_OPTIONS + (Option("trainer", "str", "timm", help="shadow trainer plugin"),)
VALIDATION_OPTIONS = SET_OPTIONS + (
    Option(
        "batch_size", "int", min=1, help="validation images per batch of the test (the paper: 128 for CIFAR)"
    ),
    Option(
        "rounds",
        "int",
        1,
        min=1,
        max=16,
        help="ask suspects the validation set in this many rounds and stop once every decision test has "
        "decided (a sequential audit; 1: ask it all at once)",
    ),
)
SHADOW_NAME = "shadow"
"""The name the shadow model's answers go by (in the cache and the query counts): no suspect's."""


def _suspect_name(name: str, settings: Mapping[str, Any]) -> None:
    not_blank(name, settings)
    if name == SHADOW_NAME:
        raise ValueError(f"{name!r} is the shadow model's name in reports and the cache; choose another")


SUSPECT_OPTIONS = (
    Option("name", "str", help="a name for this suspect, unique in the file", check=_suspect_name),
    Option("use", "str", help="suspect adapter plugin"),
    Option("truth", "str", None, choices=DECISIONS[:2], help="the right decision, where known (benchmarks)"),
)
TEST_OPTIONS = (
    Option("use", "str", help="decision test plugin"),
    Option("name", "str", None, help="a name for this test (default: the plugin name)", check=not_blank),
    Option(
        "governs",
        "bool",
        False,
        help="this test's verdicts are the report's finding (at most one test; default: the calibrated "
        "rule where the audit runs it, else the first test)",
    ),
)
PLUGIN_OPTIONS = (Option("use", "str", help="plugin name"),)
CONTROL_OPTIONS = (
    Option("use", "str", help="generator plugin of a source known to differ (another generator, real data)"),
    Option("per_class", "int", None, min=1, help="training images per class (default: the shadow set's)"),
    Option("seed", "int", None, max=SEED_MAX, help="seed of the control's training set (default: derived)"),
)
POSITIVE_CONTROL_OPTIONS = (
    Option(
        "trainer",
        "str",
        "timm",
        help="shadow trainer plugin of the positive control; its other keys here are that trainer's, and "
        "should differ from [shadow]'s (another architecture, length, augmentation)",
    ),
    Option("per_class", "int", None, min=1, help="training images per class (default: the shadow set's)"),
    Option("seed", "int", None, max=SEED_MAX, help="seed of the control's training set (default: derived)"),
)
DEFAULT_TESTS = ({"use": "trainprove"},)


@dataclass(frozen=True)
class TableSpec:
    """One table of the audit file, as the loader sees it.

    `core` are the keys the core owns there. A table with a `kind` selects a plugin of that kind by the
    value of the kind's `use_key`; the plugin's declared options are its other keys. `many` is an array of
    tables (`[[suspect]]`); `default` stands in for a table the file leaves out (None: the table is
    optional, or `required`). `build` asks the loader to build the plugin's object once, so that settings
    the plugin refuses (in its factory) are refused when the file is loaded, not halfway through the audit.
    """

    name: str
    core: tuple[Option, ...]
    kind: Kind | None = None
    required: bool = False
    many: bool = False
    default: Any = None
    build: bool = False

    @classmethod
    def of(cls, kind: str, core: tuple[Option, ...], **rest: Any) -> TableSpec:
        """The table a kind owns (`[generator]`, `[[suspect]]`...): its name and `many` come from the kind."""
        row = KIND[kind]
        return cls(row.table, core, row, many=row.many, **rest)

    @property
    def use_key(self) -> str:
        return self.kind.use_key if self.kind is not None else "use"


TABLES: tuple[TableSpec, ...] = (
    TableSpec("task", TASK_OPTIONS, required=True),
    TableSpec.of("generator", PLUGIN_OPTIONS, required=True),
    TableSpec.of("shadow-trainer", SHADOW_OPTIONS, required=True),
    TableSpec("validation", VALIDATION_OPTIONS, required=True),
    TableSpec("negative_control", CONTROL_OPTIONS, KIND["generator"]),
    TableSpec("positive_control", POSITIVE_CONTROL_OPTIONS, KIND["shadow-trainer"]),
    TableSpec.of("suspect", SUSPECT_OPTIONS, required=True),
    TableSpec.of("test", TEST_OPTIONS, default=list(DEFAULT_TESTS), build=True),
    TableSpec.of("executor", PLUGIN_OPTIONS, default={"use": "local"}),
)
"""Every table of the audit file, in the order the loader checks them."""

TOP_LEVEL = ("seed", *(t.name for t in TABLES))
"""Every top-level key an audit file may have."""


@dataclass
class PluginTable:
    """A table that selects a plugin: its name, the registration, and its validated settings."""

    use: str
    settings: dict[str, Any]
    public: dict[str, Any]
    distribution: str = ""
    version: str = ""


@dataclass
class ImageSetConfig:
    prompt: str
    per_class: int
    seed: int
    batch_size: int | None = None
    rounds: int = 1


@dataclass
class SuspectConfig:
    name: str
    adapter: PluginTable
    truth: str | None = None


@dataclass
class TestConfig:
    name: str
    test: PluginTable
    governs: bool = False


@dataclass
class LoadedTable:
    """One table as loaded: where it is (`[suspect s]`), the core's settings, the plugin's (if it selects
    one), and the table as written with every secret value masked."""

    where: str
    core: dict[str, Any]
    plugin: PluginTable | None
    public: dict[str, Any]


@dataclass
class AuditConfig:
    source: str
    seed: int
    task: Task
    generator: PluginTable
    shadow: ImageSetConfig
    trainer: PluginTable
    validation: ImageSetConfig
    suspects: list[SuspectConfig]
    tests: list[TestConfig]
    executor: PluginTable
    negative_control: PluginTable | None = None
    control_set: ImageSetConfig | None = None
    positive_control: PluginTable | None = None
    positive_set: ImageSetConfig | None = None
    document: dict[str, Any] = field(default_factory=dict)
    public_tables: dict[str, Any] = field(default_factory=dict)

    def public_document(self) -> dict[str, Any]:
        """The audit as written, with the value of every option declared `secret` replaced by
        "<secret>", whichever table declares it (for reports and manifests). A table the file leaves out
        stays out."""
        doc = dict(self.document)
        for name, public in self.public_tables.items():
            if name in doc:
                doc[name] = public
        return doc


def shadowed_options(registrations: Iterable[Any]) -> list[str]:
    """One line per option one of `registrations` (`PluginSet.all_registered()`) declares that a core key
    of a table where it can be selected takes for itself: such an option could never be set from the
    audit file. Should be empty (a test keeps it so for the installed plugins; `trainprove plugins` lists
    any as a problem of the plugin)."""
    registrations = list(registrations)
    out = []
    for spec in TABLES:
        if spec.kind is None:
            continue
        core = {o.name for o in spec.core}
        for registered in registrations:
            if registered.kind != spec.kind.name:
                continue
            for option in registered.spec.options:
                if option.name in core:
                    out.append(
                        f"{registered.kind} {registered.name!r} ({registered.distribution}) declares the key "
                        f"{option.name!r}, which the core owns in [{spec.name}]: it can never be set there"
                    )
    return out
