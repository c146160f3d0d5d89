"""`Option`: one key of the audit file a plugin (or the core) declares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    pass

REQUIRED: Any = object()
"""Sentinel default of an `Option` that the audit file must set."""

OptionType = Literal["str", "int", "float", "bool", "path", "path-or-id", "list[str]", "list[float]", "table"]


@dataclass(frozen=True)
class Option:
    """One key a plugin owns in its audit-file table.

    `type` is one of `OptionType`: "path" is a local path relative to the audit file; "path-or-id" is a
    local directory if one exists there, else kept as written (a hub id such as `org/name`). `choices`
    restricts a `str` option; `min` and `max` bound an `int` or `float` option, inclusively (None:
    unbounded; an `int` option without `min` must not be negative), and `exclusive_min` excludes `min`
    itself (a learning rate or a timeout above 0). A `float` (and every number of a `list[float]`) must be
    finite: NaN and infinities are refused. `secret` keeps the value out of reports, manifests and cache
    keys (use it for anything that names a credential): `True` makes the value itself a secret, `"env"`
    the value of the environment variable it names (an API token's `token_env`); either way
    `trainprove_core.secrets` redacts that secret from every message.

    `check`, when given, is called as `check(value, settings)` while an audit file is loaded, after every
    key of the table was validated (`settings` holds them, defaults filled in). It raises `ValueError`
    with a sentence for the user when the value cannot be used (a model that is not there, say); the core
    prefixes the file, the table and the key. It must be cheap: no downloads, no model loading. It is not
    called for `None` values.
    """

    name: str
    type: OptionType
    default: Any = REQUIRED
    help: str = ""
    choices: tuple[Any, ...] | None = None
    secret: bool | Literal["env"] = False
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    check: Callable[[Any, Mapping[str, Any]], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise TypeError(
                f"option {self.name!r}: min and max apply to int and float options, not {self.type}"
            )
        if self.exclusive_min and self.min is None:
            raise ValueError(f"option {self.name!r}: exclusive_min needs a min")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"option {self.name!r}: min {self.min} is above max {self.max}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED
