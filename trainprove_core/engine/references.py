"""Reference models: models the workspace trains on other sources' (or the defender's own) seeded image
sets and asks about image sets, for a decision test that compares a suspect with models whose training it
knows (the calibrated rule's innocent and guilty populations, the meta-classifier's shadows).

    sources (labels, settings) ─▶ generators ─▶ seeded image sets ─▶ trained models ─▶ answers

Every step goes through the workspace and the store, so a second audit of the same task pays for nothing,
and the models are trained at once and asked at once where the executor runs work in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import progress
from ..config import ImageSetConfig, PluginTable
from ..errors import ConfigError
from ..records import Answers, Generator, ImageSet, SuspectAdapter
from ..store import content_key, derive_seed
from .answers import Asking


@dataclass(frozen=True)
class ReferenceModel:
    """A reference model to train and ask: its `name` (as its queries are counted and observed), the
    trainer `table`, the `images` it is trained on, and the image sets it answers (by a label of the
    caller's)."""

    name: str
    table: PluginTable
    images: ImageSet
    asks: Mapping[str, ImageSet]


@dataclass(frozen=True)
class TrainedReference:
    """A reference model trained (or found in the store): its key, its adapter and its answers on each
    image set it was asked (by the caller's label)."""

    key: str
    adapter: SuspectAdapter
    answers: dict[str, Answers]


class ReferenceModels(Asking):
    """Reference models for decision tests (a layer of `Workspace`)."""

    def reference_generators(
        self,
        owner: str,
        labels: Sequence[str],
        settings: Mapping[str, Mapping[str, Any]],
        defender: Generator,
        clash: str,
    ) -> list[tuple[str, Generator]]:
        """Each source's label and generator: `settings[label]` gives its settings (and, with `use`, the
        plugin; default: the label is the plugin's name), validated as the table of test `owner`. A
        source that is the `defender` itself is a `ConfigError` (`clash`, with `{label}` in it)."""
        sources = []
        for label in labels:
            table = dict(settings.get(label, {}))
            use = table.pop("use", label)
            generator = self.generator(
                self.plugin_table("generator", use, table, where=f"test {owner}, {label}")
            )
            if dict(generator.identity) == dict(defender.identity):
                raise ConfigError(clash.format(label=repr(label)), key="test")
            sources.append((label, generator))
        return sources

    def seeded_set(
        self, role: str, generator: Generator, prompt: str, per_class: int, seed: Sequence[Any]
    ) -> ImageSet:
        """`per_class` images of every class from `generator`, prompted with `prompt`, seeded by the parts
        of `seed` (so a set is the same in every audit that names the same parts)."""
        return self.image_set(role, generator, ImageSetConfig(prompt, per_class, derive_seed(*seed)))

    def mixture(
        self,
        own: ImageSet,
        others: Sequence[ImageSet],
        share: float,
        per_class: int,
        seed: Sequence[Any],
        role: str = "mixture",
    ) -> ImageSet:
        """A training set with `share` of each class from `own`, the rest drawn evenly from `others`,
        drawn with the seed of the parts `seed` (its key names everything it was made from; `role` only
        what progress and errors call it: "reference mixture 0.20")."""
        rng = np.random.default_rng(derive_seed(*seed))
        parts_x, parts_y, keys = [], [], [own.key]
        n_own = max(1, round(per_class * share))
        n_other = max(1, round((per_class - n_own) / len(others)))
        for c in range(self.task.num_classes):
            idx = rng.permutation(np.flatnonzero(own.labels == c))[:n_own]
            parts_x.append(own.images[idx])
            parts_y.append(own.labels[idx])
        for other in others:
            keys.append(other.key)
            for c in range(self.task.num_classes):
                idx = rng.permutation(np.flatnonzero(other.labels == c))[:n_other]
                parts_x.append(other.images[idx])
                parts_y.append(other.labels[idx])
        identity = {"kind": "mixture", "parts": keys, "share": share, "per_class": per_class}
        return ImageSet(
            f"{role} {share:.2f}",
            content_key(identity),
            np.concatenate(parts_x),
            np.concatenate(parts_y),
            identity,
        )

    def reference_models(self, models: Sequence[ReferenceModel]) -> list[TrainedReference]:
        """Train every model (at once where the executor runs work in parallel), then ask each one the
        image sets it names (at once too); raises the first error. Adds a progress step per model and per
        answer set to the current plan."""
        progress.add(len(models), "train")
        progress.add(sum(len(m.asks) for m in models), "query")
        opened = self.shadow_models([(m.table, m.images) for m in models])
        asks = [
            (m.name, adapter, x)
            for m, (adapter, _) in zip(models, opened, strict=True)
            for x in m.asks.values()
        ]
        answered = iter(self.answers_all(asks))
        return [
            TrainedReference(key, adapter, {label: next(answered)[0] for label in m.asks})
            for m, (adapter, key) in zip(models, opened, strict=True)
        ]
