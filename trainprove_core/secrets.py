"""Secrets never leave the process: one registry of secret values, and one function that removes them.

A secret is declared once: an option marked `Option(..., secret=True)` (its value is the secret) or
`secret="env"` (its value names an environment variable, and that variable's value is the secret) is
registered by the core when a table is validated; a plugin that obtains a credential any other way calls
`register(value)`. From then on `redact` replaces, in any text, every registered value, the forms in which
it travels (base64, as in a basic-auth header; percent-encoded, as in a URL or a `Location` header) and any
start of one of them of `PREFIX` characters or more (an excerpt cut in the middle of a token) with
`<secret>`, whichever way each character of them is escaped: JSON (`\\/`, `\\u0061`), percent-encoding
(`%2F`, `%61`) or HTML character references (`&#47;`, `&#x2F;`, `&sol;`), alone or mixed.

The core applies it where text leaves the process: the report (`report.json`, and `report.html`, which is
rendered from it), every message the CLI prints, and progress lines. Plugins apply it too where they
quote what a server sent, so a message is clean even where a library user prints it. `redact` is cheap
when nothing is registered (one attribute read).
"""

from __future__ import annotations

import base64
import functools
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

MASK = "<secret>"
PREFIX = 8
"""A start of a secret this long or longer is redacted too (a message that quotes a server's answer may
be cut mid-token)."""
SHORTEST = 4
"""Values shorter than this are not registered: replacing them everywhere would garble every message
without protecting anything (a 3-character credential is no secret)."""

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | _Any | None = None


def forms(value: str) -> set[str]:
    """The ways `value` travels in a request or an answer: as is, percent-encoded, and base64 (standard
    and URL-safe, with and without padding) of itself and of the basic-auth pairs `value:` and `:value`
    (a token sent as the user name or as the password)."""
    encoded = set()
    for raw in (value, f"{value}:", f":{value}"):
        data = raw.encode("utf-8")
        encoded |= {base64.b64encode(data).decode("ascii"), base64.urlsafe_b64encode(data).decode("ascii")}
    encoded |= {e.rstrip("=") for e in encoded}
    return {value, quote(value, safe=""), quote(value), *encoded}


_NAMED = {
    "&": ("amp",),
    "/": ("sol",),
    "=": ("equals",),
    "+": ("plus",),
    ".": ("period",),
    "_": ("lowbar", "UnderBar"),
    "-": ("hyphen", "dash"),
    ":": ("colon",),
    "~": ("tilde",),
    "%": ("percnt",),
    '"': ("quot",),
    "'": ("apos",),
}
"""HTML's named character references of the characters a token or its forms may hold."""


def _hex(number: int, digits: int) -> str:
    """A regex of `number` in hex, in either case (an escape's hex digits may be upper or lower case)."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{number:0{digits}x}")


def _char(c: str) -> str:
    """A regex of one character as it travels: as is, JSON-escaped (`\\uXXXX`, `\\/`, `\\\\`, `\\"`),
    percent-encoded (`%2F`, each UTF-8 byte) or as an HTML character reference (`&#47;`, `&#x2f;`,
    `&sol;`)."""
    code = ord(c)
    # A backslash may be escaped again (JSON in JSON, a `repr`), and so may `%` and `&`.
    ways = [re.escape(c)]
    if code < 0x10000:
        ways.append(r"\\+u" + _hex(code, 4))
    if c in '/"':
        ways.append(r"\\+" + re.escape(c))
    ways.append("".join("(?:%|%25)" + _hex(b, 2) for b in c.encode("utf-8")))
    amp = "(?:&|&amp;)"
    ways.append(f"{amp}#0*{code};?")
    ways.append(f"{amp}#[xX]0*{_hex(code, 1).lstrip('0') or '0'};?")
    ways.extend(f"{amp}{name};" for name in _NAMED.get(c, ()))
    return "(?:" + "|".join(ways) + ")"


_forms: list[list[re.Pattern[str]]] = []
"""Every form of every secret, one regex per character (`_char`)."""
_known: set[str] = set()
"""The pattern of every form in `_forms` (a form two secrets share is kept once)."""
_heads: list[re.Pattern[str]] = []
"""Where a secret may start, one regex per `register` call (the heads of the forms it added): compiled
once, so registering the n-th secret costs what registering the first did (one regex of every form of
every secret, compiled again on each call, made the n-th cost n times more: 13 s for 60 tokens)."""


@functools.lru_cache(maxsize=4096)
def _char_pattern(c: str) -> re.Pattern[str]:
    return re.compile(_char(c))


def register(*values: str | None) -> None:
    """Declare `values` secret (None and values shorter than `SHORTEST` are ignored)."""
    global _pattern
    new = {v for v in values if isinstance(v, str) and len(v) >= SHORTEST} - _values
    if not new:
        return
    with _lock:
        _values.update(new)
        heads = set()
        for value in new:
            for form in sorted(forms(value)):
                chars = [_char_pattern(c) for c in form]
                whole = "".join(p.pattern for p in chars)
                if whole not in _known:
                    _known.add(whole)
                    _forms.append(chars)
                    # Where a secret may start: the first PREFIX characters of a form (all of a shorter
                    # one), in any of the ways each character travels. `redact` then follows each form as
                    # far as it goes.
                    heads.add("".join(p.pattern for p in chars[:PREFIX]))
        if heads:
            _heads.append(re.compile("|".join(sorted(heads, key=len, reverse=True))))
        _pattern = _heads[0] if len(_heads) == 1 else _Any(tuple(_heads))


class _Any:
    """The leftmost match of any of several patterns (`search`, as a compiled pattern's)."""

    def __init__(self, patterns: tuple[re.Pattern[str], ...]) -> None:
        self.patterns = patterns

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        best = None
        for pattern in self.patterns:
            found = pattern.search(text, pos)
            if found is not None and (
                best is None
                or found.start() < best.start()
                or (found.start() == best.start() and found.end() > best.end())
            ):
                best = found
        return best


def registered() -> frozenset[str]:
    """The secret values declared so far (for tests that look for them in outputs)."""
    return frozenset(_values)


def redact(text: str) -> str:
    """`text` with every registered secret, its forms and their long prefixes replaced by `<secret>`,
    whichever way each of their characters is escaped (JSON, percent-encoding, HTML references)."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    out, done, at = [], 0, 0
    forms_now = list(_forms)
    while (found := pattern.search(text, at)) is not None:
        start, end = found.start(), found.end()
        for form in forms_now:  # the longest stretch of any form from here
            pos, matched = start, 0
            for char in form:
                step = char.match(text, pos)
                if step is None:
                    break
                pos, matched = step.end(), matched + 1
            if matched >= min(PREFIX, len(form)):
                end = max(end, pos)
        out += [text[done:start], MASK]
        done = at = end
    if not out:
        return text
    return "".join(out) + text[done:]


def redact_all(obj: Any) -> Any:
    """A copy of a JSON-like object (dicts, lists, strings, numbers) with every string redacted, keys
    included."""
    if _pattern is None:
        return obj
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k: redact_all(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_all(v) for v in obj]
    return obj


def register_options(settings: Mapping[str, Any], options: Iterable[Any]) -> None:
    """Register the secrets a validated table declares: the value of each `secret=True` option, and the
    environment variable named by each `secret="env"` option."""
    import os

    for option in options:
        value = settings.get(option.name)
        if not option.secret or not isinstance(value, str):
            continue
        register(os.environ.get(value) if option.secret == "env" else value)
