"""Class names as a remote model writes them, matched to the suspect's label space.

An API that answers in words (`{"label": "Tabby Cat"}`, "The image shows a ring.") does not use the audit
file's spelling. Names are compared normalised: case folded, runs of spaces and underscores made one
space, and (for free text) punctuation dropped. Two classes that normalise alike are refused up front,
so a match is never a guess between them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from trainprove_core import ConfigError

_SPACES = re.compile(r"[\s_]+")
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalise(text: str, punctuation: bool = False) -> str:
    """`text` case-folded, with spaces and underscores collapsed (and, with `punctuation`, punctuation
    replaced by spaces first)."""
    if punctuation:
        text = _PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip().casefold()


class NameIndex:
    """The label space's class names, looked up exactly or normalised."""

    def __init__(self, names: Sequence[str], punctuation: bool = False) -> None:
        self.names = list(names)
        self.punctuation = punctuation
        self.exact = {name: i for i, name in enumerate(self.names)}
        self.normalised: dict[str, int] = {}
        for i, name in enumerate(self.names):
            key = normalise(name, punctuation)
            if not key:
                raise ConfigError(f"the class name {name!r} is empty once normalised", key="label_names")
            if key in self.normalised:
                raise ConfigError(
                    f"the class names {self.names[self.normalised[key]]!r} and {name!r} are the same once "
                    "case, spaces and punctuation are ignored, so an answer could not tell them apart; "
                    "rename one in `label_names`",
                    key="label_names",
                )
            self.normalised[key] = i

    def find(self, text: str) -> int | None:
        """The class `text` names, exactly or once normalised; None if it names none."""
        if text in self.exact:
            return self.exact[text]
        return self.normalised.get(normalise(text, self.punctuation))

    def mentioned(self, text: str) -> list[tuple[int, int]]:
        """Every class whose normalised name occurs in `text` as whole words, as (class, character offset
        in `text` where it starts), in order of appearance."""
        found = []
        for i, name in enumerate(self.names):
            words = normalise(name, True).split(" ")
            pattern = r"(?<![^\W_])" + r"[\W_]+".join(re.escape(w) for w in words) + r"(?![^\W_])"
            for match in re.finditer(pattern, text, flags=re.IGNORECASE):
                found.append((match.start(), i))
        return [(i, start) for start, i in sorted(found)]
