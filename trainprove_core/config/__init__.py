"""The audit file: TOML in, a validated `AuditConfig` out, or a `ConfigError` naming the file and key.

The core owns `seed`, `[task]`, `[shadow]`'s set keys, `[validation]` and the `name`/`use`/`truth` keys of
suspects and tests; every other key belongs to the plugin that a table's `use` (or `[shadow] trainer`)
names, and is checked against the options that plugin declares. Relative paths are relative to the audit
file.

Every table is described once, in `TABLES`: its core keys, and, for a table that selects a plugin, the
plugin kind and the key that names it. `config_from_dict` validates them all in one loop (core and plugin
keys together, so a typo is matched against every key the table accepts), runs the options' load-time
checks, builds each decision test once to let it refuse its settings, and keeps a masked copy of every
table for `AuditConfig.public_document()`. Nothing here generates, trains or queries.

The package, by job: `tables` (what each table holds, and the dataclasses a file becomes), `validate` (one
table checked), `load` (a file read, every table and the checks across them), `capacity` (what the machine
can hold).
"""

from .capacity import check_disk, check_memory, image_sets, memory_needed, physical_memory
from .load import config_from_dict, load_config, load_table, parse_toml, tomllib
from .tables import (
    CONTROL_OPTIONS,
    DEFAULT_TESTS,
    MAX_IMAGE_SIZE,
    PLUGIN_OPTIONS,
    POSITIVE_CONTROL_OPTIONS,
    SEED,
    SEED_MAX,
    SET_OPTIONS,
    SHADOW_NAME,
    SHADOW_OPTIONS,
    SUSPECT_OPTIONS,
    TABLES,
    TASK_OPTIONS,
    TEST_OPTIONS,
    TOP_LEVEL,
    VALIDATION_OPTIONS,
    AuditConfig,
    ImageSetConfig,
    LoadedTable,
    PluginTable,
    SuspectConfig,
    TableSpec,
    TestConfig,
    shadowed_options,
)
from .validate import (
    bare_message,
    check_plugin_settings,
    public_settings,
    run_checks,
    table_error,
    validate_table,
)

__all__ = [
    "bare_message",
    "AuditConfig",
    "CONTROL_OPTIONS",
    "DEFAULT_TESTS",
    "ImageSetConfig",
    "LoadedTable",
    "MAX_IMAGE_SIZE",
    "PLUGIN_OPTIONS",
    "POSITIVE_CONTROL_OPTIONS",
    "PluginTable",
    "SEED",
    "SEED_MAX",
    "SET_OPTIONS",
    "SHADOW_NAME",
    "SHADOW_OPTIONS",
    "SUSPECT_OPTIONS",
    "SuspectConfig",
    "TABLES",
    "TASK_OPTIONS",
    "TEST_OPTIONS",
    "TOP_LEVEL",
    "TableSpec",
    "TestConfig",
    "VALIDATION_OPTIONS",
    "check_disk",
    "check_memory",
    "check_plugin_settings",
    "config_from_dict",
    "image_sets",
    "load_config",
    "load_table",
    "memory_needed",
    "parse_toml",
    "physical_memory",
    "public_settings",
    "run_checks",
    "shadowed_options",
    "table_error",
    "tomllib",
    "validate_table",
]
