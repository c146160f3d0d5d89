"""The test kit for plugin authors: a pytest plugin (installed with trainprove, active automatically) and
contract classes whose checks a plugin's tests inherit.

Contracts: subclass one in a test module (the class name must start with `Test`), give it a factory
fixture, and every check of the contract runs against your plugin:

    from trainprove_core.testing import GeneratorContract, build

    import my_package.plugin as plugin

    class TestMyGenerator(GeneratorContract):
        identity_changes = ({"steps": 5},)        # settings whose images differ, so must their identity

        @pytest.fixture
        def generator_factory(self):
            return lambda **settings: build(plugin, "generator", "my-model", settings)

- `GeneratorContract` (`generator_factory`): uint8 RGB images of shape (N, native_size, native_size, 3);
  the same request gives the same image and image i depends only on request i (the same images in any
  batch split, so sets can be made in chunks and resumed); the identity is JSON and changes with the
  settings listed in `identity_changes` (and not with those in `identity_keeps`).
- `SuspectAdapterContract` (`adapter_factory`): the protocol's attributes; a label space that maps onto
  the task's; one answer per image, in the label space, probabilities exactly when `returns` says so,
  rows that sum to one; the same answers in any batch split; a JSON identity that follows the settings.
- `DecisionTestContract` (`decision_test_factory`): `needs` is declared; verdicts on simulated audits
  (`trainprove_core.simulate`) have a decision in `records.DECISIONS`, an explanation, a finite
  `details["score"]` when they decide and a `details["reason"]` when they do not, JSON details, the same
  decision twice; clear cases come out right (4 of 5 each way, `separates`); degenerate evidence (a
  suspect that answered nothing, a shadow at chance) is inconclusive.
- `ExecutorContract` (`executor_factory`): `run`, `close` and `parallel` (a bool, or the kinds of work
  it runs at once); every work item comes back
  once, as the object given, with what `execute` gives locally and the counts (images, queries); an
  item's error is raised unwrapped; a run stopped early leaves the executor usable; `close` twice is safe.

Every factory takes the plugin's audit-file keys as keyword arguments; `build` makes one from a plugin's
registration exactly as an audit does (the table validated against the declared options, defaults filled
in, then the factory called).

Fixtures: `trainprove_session_store`, one content-addressed store shared by the whole test session (keys
are content hashes, so tests that need the same expensive artifacts build them once). Under pytest-xdist
a session is one worker's: tests that should share its artifacts must run on the same worker (this
project's conftest.py groups their files).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from . import executors
from .config import validate_table
from .plugins import PluginSet, new_plugin_set
from .records import (
    DECISIONS,
    KIND,
    Answers,
    DecisionTest,
    Evidence,
    GenerationRequest,
    Generator,
    QueryCost,
    SuspectAdapter,
    Verdict,
)
from .simulate import SimulatedAudit
from .store import Store
from .task import Task


def isolated_plugins(*plugins: tuple[object, str]) -> PluginSet:
    """A plugin set holding the core's plugins and the given `(module, name)` pairs, nothing else."""
    plugin_set = new_plugin_set()
    plugin_set.register(executors, "core", "trainprove")
    for module, name in plugins:
        plugin_set.register(module, name)
    return plugin_set


def build(
    plugin: object, kind: str, name: str, table: Mapping[str, Any] | None = None, task: Task | None = None
) -> Any:
    """What `plugin` (a plugin set, or a plugin module or object) registers as `name` under `kind`, built
    from the audit-file keys `table` as an audit builds it; a suspect adapter needs the `task`."""
    plugin_set = plugin if isinstance(plugin, PluginSet) else isolated_plugins((plugin, "plugin"))
    spec = plugin_set.get(kind, name).spec
    where = KIND[kind].table
    settings = validate_table(dict(table or {}), spec.options, source="test.toml", where=where)
    if kind == "suspect":
        if task is None:
            raise TypeError("a suspect adapter is built for a task: pass task=")
        return spec.factory(settings, task)
    return spec.factory(settings)


def requests(seeds: Sequence[int], classes: Sequence[str], indices: Sequence[int] | None = None) -> list:
    """One `GenerationRequest` per seed, prompted "a {label}"; class indices cycle unless given."""
    indices = indices if indices is not None else [i % len(classes) for i in range(len(seeds))]
    return [
        GenerationRequest(f"a {classes[c]}", c, classes[c], int(s))
        for s, c in zip(seeds, indices, strict=True)
    ]


def _json_identity(identity: Any) -> str:
    assert isinstance(identity, Mapping), f"identity must be a mapping, not {type(identity).__name__}"
    try:
        return json.dumps(dict(identity), sort_keys=True)
    except TypeError as exc:
        raise AssertionError(f"identity is not JSON-serialisable ({exc}): {identity!r}") from None


def _check_identity(make: Callable[..., Any], changes: Sequence[Mapping], keeps: Sequence[Mapping]) -> None:
    base = _json_identity(make().identity)
    assert _json_identity(make().identity) == base, "the same settings gave another identity"
    for settings in changes:
        assert _json_identity(make(**settings).identity) != base, f"identity ignores {dict(settings)}"
    for settings in keeps:
        assert _json_identity(make(**settings).identity) == base, f"identity changes with {dict(settings)}"


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


class _Factory:
    factory_fixture = ""

    def _missing(self) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must define a fixture `{self.factory_fixture}` returning a callable "
            "that builds the object from its audit-file keys (see trainprove_core.testing)"
        )


# --------------------------------------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------------------------------------


class GeneratorContract(_Factory):
    """Checks every `records.Generator` must pass. Define a `generator_factory` fixture."""

    factory_fixture = "generator_factory"
    classes: Sequence[str] = ("zero", "one", "two")
    """Class names of the requests (a generator conditioned on the class index needs its own)."""
    identity_changes: Sequence[Mapping[str, Any]] = ()
    """Settings that change the images, so must change the identity."""
    identity_keeps: Sequence[Mapping[str, Any]] = ()
    """Settings that do not change the images (batch size, device), so must keep the identity."""
    crowd = 24
    """Requests in the batch that the split check cuts (make it cross the generator's own micro-batches)."""

    @pytest.fixture
    def generator_factory(self) -> Callable[..., Generator]:
        return self._missing()

    @pytest.fixture
    def generator(self, generator_factory: Callable[..., Generator]) -> Generator:
        return generator_factory()

    def requests(self, seeds: Sequence[int], indices: Sequence[int] | None = None) -> list:
        return requests(seeds, self.classes, indices)

    def test_generator_has_the_protocols_attributes(self, generator: Generator) -> None:
        assert isinstance(generator, Generator), "needs identity, native_size, batch_size and generate()"
        assert _is_count(generator.native_size) and _is_count(generator.batch_size)

    def test_images_are_uint8_rgb_at_the_native_size(self, generator: Generator) -> None:
        images = np.asarray(generator.generate(self.requests([11, 12, 13, 14])))
        size = generator.native_size
        assert images.dtype == np.uint8, f"images are {images.dtype}, not uint8"
        assert images.shape == (4, size, size, 3), f"shape {images.shape}, not (4, {size}, {size}, 3)"

    def test_the_seed_decides_the_image(self, generator: Generator) -> None:
        seeds = [1, 2, 3, 4]
        first = np.asarray(generator.generate(self.requests(seeds)))
        np.testing.assert_array_equal(first, generator.generate(self.requests(seeds)))
        other = np.asarray(generator.generate(self.requests([s + 1000 for s in seeds])))
        assert not any(np.array_equal(a, b) for a, b in zip(first, other, strict=True)), "seeds are ignored"

    def test_an_image_depends_only_on_its_own_request(self, generator: Generator) -> None:
        reqs = self.requests([7919 * i % 100_003 for i in range(self.crowd)])
        whole = np.asarray(generator.generate(reqs))
        cut = max(1, self.crowd // 3)
        parts = np.concatenate([generator.generate(reqs[:cut]), generator.generate(reqs[cut:])])
        np.testing.assert_array_equal(whole, parts, err_msg="the images depend on the batch they share")

    def test_identity_is_json_and_follows_the_settings(
        self, generator_factory: Callable[..., Generator]
    ) -> None:
        _check_identity(generator_factory, self.identity_changes, self.identity_keeps)


# --------------------------------------------------------------------------------------------------------
# Suspect adapters
# --------------------------------------------------------------------------------------------------------


def contract_images(count: int, size: int, seed: int = 1) -> np.ndarray:
    """uint8 RGB images, each a random colour plus noise (a random network sees them as different)."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(0, 256, (count, 1, 1, 3))
    return np.clip(colour + rng.normal(0, 40, (count, size, size, 3)), 0, 255).astype(np.uint8)


class SuspectAdapterContract(_Factory):
    """Checks every `records.SuspectAdapter` must pass. Define an `adapter_factory` fixture (it may ask for
    `adapter_task`); override `adapter_images` for images your model tells apart."""

    factory_fixture = "adapter_factory"
    classes: Sequence[str] = ("zero", "one", "two")
    image_size = 16
    identity_changes: Sequence[Mapping[str, Any]] = ()
    identity_keeps: Sequence[Mapping[str, Any]] = ()
    labels_follow_probabilities = True
    """Whether an answered label is the class of highest probability (where the top two differ)."""

    @pytest.fixture
    def adapter_factory(self) -> Callable[..., SuspectAdapter]:
        return self._missing()

    @pytest.fixture
    def adapter_task(self) -> Task:
        return Task(tuple(self.classes), self.image_size)

    @pytest.fixture
    def adapter_images(self, adapter_task: Task) -> np.ndarray:
        return contract_images(12, adapter_task.image_size)

    @pytest.fixture
    def adapter(self, adapter_factory: Callable[..., SuspectAdapter]) -> SuspectAdapter:
        return adapter_factory()

    def test_adapter_has_the_protocols_attributes(self, adapter: SuspectAdapter, adapter_task: Task) -> None:
        assert isinstance(adapter, SuspectAdapter), (
            "needs identity, label_names, returns, batch_size, cost and predict()"
        )
        assert adapter.returns in ("labels", "probabilities"), adapter.returns
        assert _is_count(adapter.batch_size)
        assert isinstance(adapter.cost, QueryCost)
        assert adapter.cost.budget is None or adapter.cost.budget >= 0
        if adapter.label_names is not None:
            names = list(adapter.label_names)
            assert all(isinstance(n, str) for n in names) and len(set(names)) == len(names), names
            adapter_task.label_map(names)  # the same classes as the task's, in any order

    def test_one_answer_per_image_in_the_label_space(
        self, adapter: SuspectAdapter, adapter_task: Task, adapter_images: np.ndarray
    ) -> None:
        answers = adapter.predict(adapter_images)
        assert isinstance(answers, Answers)
        n = len(adapter_images)
        names = list(adapter.label_names) if adapter.label_names is not None else list(adapter_task.classes)
        labels = np.asarray(answers.labels)
        assert labels.shape == (n,), f"{labels.shape} labels for {n} images"
        if labels.dtype.kind in "OUS":
            outside = {str(v) for v in labels if v is not None and v not in names and v != "-1"}
            assert not outside, f"labels outside the label space: {sorted(outside)}"
            labels = np.array([names.index(v) if v in names else -1 for v in labels])
        assert ((labels >= -1) & (labels < len(names))).all(), f"label indices outside 0..{len(names) - 1}"
        if adapter.returns == "labels":
            assert answers.probabilities is None, "returns = 'labels' but probabilities were given"
            return
        probs = np.asarray(answers.probabilities, dtype=float)
        assert probs.shape == (n, len(names)), (
            f"probabilities of shape {probs.shape}, not ({n}, {len(names)})"
        )
        assert np.isfinite(probs).all() and (probs >= 0).all()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-3, err_msg="rows do not sum to 1")
        if self.labels_follow_probabilities:
            top2 = np.sort(probs, axis=1)[:, -2:]
            clear = (labels >= 0) & (top2[:, 1] - top2[:, 0] > 1e-4)
            assert (labels[clear] == probs[clear].argmax(axis=1)).all(), "labels are not the top class"

    def test_answers_do_not_depend_on_the_batch(
        self, adapter: SuspectAdapter, adapter_images: np.ndarray
    ) -> None:
        whole = adapter.predict(adapter_images)
        cut = max(1, len(adapter_images) // 3)
        head, tail = adapter.predict(adapter_images[:cut]), adapter.predict(adapter_images[cut:])
        labels = np.concatenate([np.asarray(head.labels), np.asarray(tail.labels)])
        np.testing.assert_array_equal(np.asarray(whole.labels), labels)
        if whole.probabilities is not None:
            parts = np.concatenate([head.probabilities, tail.probabilities])
            np.testing.assert_allclose(whole.probabilities, parts, atol=1e-4)

    def test_identity_is_json_and_follows_the_settings(
        self, adapter_factory: Callable[..., SuspectAdapter]
    ) -> None:
        _check_identity(adapter_factory, self.identity_changes, self.identity_keeps)


# --------------------------------------------------------------------------------------------------------
# Decision tests
# --------------------------------------------------------------------------------------------------------


class DecisionTestContract(_Factory):
    """Checks every `records.DecisionTest` must pass, on simulated audits whose truth is known. Define a
    `decision_test_factory` fixture. A test that needs `Evidence.run` (an audit to ask for more) is not
    served by these checks."""

    factory_fixture = "decision_test_factory"
    world = SimulatedAudit(gap=0.15, shift_sd=0.0, confidence_sd=0.0, confidence_gap=2.0)
    """Where the clear cases come from: same-source suspects exactly as accurate and confident as the
    shadow, other-source ones 15 points less accurate and less confident."""
    separates = True
    """Whether the clear cases must come out right (False for a rule that ignores the evidence)."""

    @pytest.fixture
    def decision_test_factory(self) -> Callable[..., DecisionTest]:
        return self._missing()

    @pytest.fixture
    def decision_test(self, decision_test_factory: Callable[..., DecisionTest]) -> DecisionTest:
        return decision_test_factory()

    def evidence(
        self, test: DecisionTest, trained: bool, seed: int = 0, world: SimulatedAudit | None = None
    ) -> Evidence:
        world = world or self.world
        rng = np.random.default_rng(seed)
        return world.evidence(rng, trained, test.needs == "probabilities", name=f"suspect-{seed}")

    def degenerate_evidence(self, test: DecisionTest) -> dict[str, Evidence]:
        """Evidence no test should read anything into, by what is wrong with it."""
        unanswered = self.evidence(test, True)
        unanswered.suspect = Answers(
            np.full(len(unanswered.true_labels), -1), unanswered.suspect.probabilities
        )
        chance = SimulatedAudit(shadow_accuracy=1 / self.world.n_classes, gap=0.0)
        return {
            "the suspect answered nothing": unanswered,
            "the shadow is at chance": self.evidence(test, True, world=chance),
        }

    def check_verdict(self, verdict: Any, evidence: Evidence) -> None:
        assert isinstance(verdict, Verdict), f"decide() returned {type(verdict).__name__}, not a Verdict"
        assert verdict.decision in DECISIONS
        assert verdict.suspect == evidence.suspect_name, "the verdict names another suspect"
        assert isinstance(verdict.test, str) and verdict.test
        assert isinstance(verdict.explanation, str) and verdict.explanation.strip(), "no explanation"
        if verdict.decision == "inconclusive":
            assert verdict.details.get("reason"), "an inconclusive verdict says why in details['reason']"
        else:
            score = verdict.details.get("score")
            assert isinstance(score, (int, float)) and math.isfinite(score), "a decision carries a score"
        try:
            json.dumps(dataclasses.asdict(verdict))
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"the verdict is not JSON (numpy scalars?): {exc}") from None

    def test_declares_what_it_needs(self, decision_test: DecisionTest) -> None:
        assert isinstance(decision_test, DecisionTest), "needs `needs` and decide()"
        assert decision_test.needs in ("labels", "probabilities"), decision_test.needs

    def test_verdicts_are_well_formed_and_repeatable(self, decision_test: DecisionTest) -> None:
        for trained in (True, False):
            evidence = self.evidence(decision_test, trained, seed=1)
            verdict = decision_test.decide(evidence)
            self.check_verdict(verdict, evidence)
            again = decision_test.decide(evidence)
            assert (again.decision, again.statistic) == (verdict.decision, verdict.statistic)

    def test_clear_cases_come_out_right(self, decision_test: DecisionTest) -> None:
        if not self.separates:
            pytest.skip("this rule does not read the evidence")
        # A rule errs at its alpha even on clear cases: most of five each way must come out right.
        for trained, right in ((True, "trained-on-generator"), (False, "not-trained-on-generator")):
            verdicts = [
                decision_test.decide(self.evidence(decision_test, trained, seed)) for seed in range(5)
            ]
            wrong = [v.explanation for v in verdicts if v.decision != right]
            assert len(wrong) <= 1, f"{len(wrong)} of 5 clear cases not {right}: {wrong}"

    def test_degenerate_evidence_is_inconclusive(self, decision_test: DecisionTest) -> None:
        for what, evidence in self.degenerate_evidence(decision_test).items():
            verdict = decision_test.decide(evidence)
            self.check_verdict(verdict, evidence)
            assert verdict.decision == "inconclusive", f"{what}, yet: {verdict.explanation}"


# --------------------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------------------


class ContractGenerator:
    """A tiny generator for executor checks: image i is noise from request i's seed, in class-coloured
    tint (module-level, so it pickles by reference). `fail_on` makes requests with that seed raise
    `InputError`."""

    batch_size = 4
    native_size = 8

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.fail_on = settings.get("fail_on")
        self.identity = {"name": "contract-generator", "fail_on": self.fail_on}

    def generate(self, requests: Sequence[GenerationRequest]) -> np.ndarray:
        from .errors import InputError

        out = []
        for r in requests:
            if r.seed == self.fail_on:
                raise InputError(f"contract generator: seed {r.seed} refused")
            rng = np.random.default_rng(r.seed)
            out.append((rng.integers(0, 128, (8, 8, 3)) + 10 * r.class_index).astype(np.uint8))
        return np.stack(out)


class ContractModel:
    """A tiny suspect for executor checks: the label is the image's mean brightness modulo 3."""

    identity = {"name": "contract-model"}
    label_names = None
    returns = "labels"
    batch_size = 4
    cost = QueryCost()

    def __init__(self, settings: Mapping[str, Any], task: Task) -> None:
        self.task = task

    def predict(self, images: np.ndarray) -> Answers:
        return Answers(np.asarray(images).reshape(len(images), -1).sum(1).astype(np.int64) % 3)


def contract_work(n_chunks: int = 6, fail_on: int | None = None) -> list:
    """Generate and query work items as the core makes them (a `ModelRef` with a module-level factory,
    no driver objects), for executor checks."""
    from .records import ModelRef, Work

    task = Task(("a", "b", "c"), 8)
    generator = ModelRef("generator", "contract", {"fail_on": fail_on}, ContractGenerator)
    model = ModelRef("suspect", "contract", {}, ContractModel, task)
    works = []
    for i in range(n_chunks):
        reqs = requests([1000 + 4 * i + j for j in range(4)], task.classes)
        works.append(Work("generate", generator, (reqs, task.image_size), 4, i, "generate contract set"))
    images = np.random.default_rng(0).integers(0, 256, (4 * n_chunks, 8, 8, 3)).astype(np.uint8)
    for i in range(n_chunks):
        works.append(
            Work("query", model, images[4 * i : 4 * i + 4], 4, i, "query contract", remote=i % 2 == 0)
        )
    return works


class ExecutorContract(_Factory):
    """Checks for an `Executor` (see docs/hooks.md, Executors). Provide `executor_factory`, a callable of
    the `[executor]` keys returning a fresh executor; each check closes what it opened."""

    @pytest.fixture
    def executor_factory(self) -> Callable[..., Any]:
        return self._missing()

    @pytest.fixture
    def executor(self, executor_factory: Callable[..., Any]) -> Any:
        executor = executor_factory()
        yield executor
        executor.close()

    def test_executor_has_the_protocols_attributes(self, executor: Any) -> None:
        from .records import WORK_KINDS

        parallel = getattr(executor, "parallel", None)
        assert isinstance(parallel, (bool, frozenset)), "`parallel` must be a bool or a frozenset of kinds"
        assert isinstance(parallel, bool) or parallel <= set(WORK_KINDS), f"unknown kinds in {parallel}"
        assert callable(getattr(executor, "run", None)) and callable(getattr(executor, "close", None))

    def test_every_item_comes_back_once_with_what_execute_gives(self, executor: Any) -> None:
        from .executors import ModelCache, execute

        works = contract_work()
        seen = {}
        for work, outcome in executor.run(works):
            assert any(work is w for w in works), "run must yield the very Work objects it was given"
            assert id(work) not in seen, f"{work.label} chunk {work.index} came back twice"
            seen[id(work)] = outcome
        assert len(seen) == len(works), f"{len(works) - len(seen)} items never came back"
        local = ModelCache()
        for work in works:
            outcome, expected = seen[id(work)], execute(work, local)
            if work.kind == "generate":
                assert outcome.images == work.size and outcome.queries == 0
                for key in ("images", "labels"):
                    np.testing.assert_array_equal(outcome.value[key], expected.value[key])
            else:
                assert outcome.queries == work.size and outcome.images == 0, "queries must be counted"
                np.testing.assert_array_equal(outcome.value.labels, expected.value.labels)
            assert outcome.seconds >= 0

    def test_an_items_error_is_raised_unwrapped(self, executor: Any) -> None:
        from .errors import InputError

        works = contract_work(n_chunks=2, fail_on=1004)
        with pytest.raises(InputError, match="seed 1004 refused"):
            list(executor.run(works))

    def test_stopping_early_and_closing_twice(self, executor_factory: Callable[..., Any]) -> None:
        executor = executor_factory()
        results = executor.run(contract_work())
        next(iter(results))
        close = getattr(results, "close", None)
        if callable(close):
            close()
        works = contract_work(n_chunks=1)
        assert len(list(executor.run(works))) == len(works), "an executor runs again after a stopped run"
        executor.close()
        executor.close()


# --------------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def trainprove_session_store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.getbasetemp() / "trainprove-session-store")
