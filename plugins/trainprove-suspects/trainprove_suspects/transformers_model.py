"""The `transformers` suspect adapter: an image classifier saved with Hugging Face `transformers`
(`AutoModelForImageClassification` and its image processor, `save_pretrained` layout), run in this process.

What the adapter knows before loading anything heavy: the model's classes (config.json's `id2label`, or
`label_names`), matched to the task's classes by name with the rules of the `hf-inference` style
(`names.NameIndex`: exactly, else ignoring case, spaces and underscores; an output that names no class is
counted and never mapped to one), and its identity: the SHA-256 of every file of a local folder (cached
by the core while a file is unchanged, `trainprove_core.file_sha256`), or a hub id with the commit its
revision resolves to. torch and transformers are imported, and the weights loaded, on `load()` (which an
audit calls before the first query) or on the first `predict`; a suspect whose answers are all cached is
never loaded. The images go through the model's own image processor (resize, rescale, normalise as it was
saved), not through settings of the audit file.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainprove_core import (
    Answers,
    ConfigError,
    InputError,
    QueryCost,
    Task,
    check_loaded,
    file_sha256,
    threads,
)

from . import __version__
from .names import NameIndex

if TYPE_CHECKING:
    import torch

NOT_ANSWERED = -1
INSTALL_HINT = "pip install 'trainprove-suspects[transformers]'"


def _read_json(path: Path, setting: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"key {setting!r}: {path} cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"key {setting!r}: {path} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InputError(f"key {setting!r}: {path} holds no JSON object")
    return document


def _resolve_hub(repo_id: str, revision: str | None) -> tuple[Path, str]:
    """The local snapshot holding the hub model's two configs, and the commit its revision is at."""
    if repo_id.startswith((".", "/", "~")) or repo_id.count("/") != 1:
        raise InputError(
            f"key 'model': {repo_id!r} is neither a directory nor a hub id of the form 'org/name'"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise InputError(f"key 'model': a hub id needs huggingface_hub ({INSTALL_HINT})") from None
    try:
        snapshot = snapshot_download(
            repo_id, revision=revision, allow_patterns=["config.json", "preprocessor_config.json"]
        )
    except Exception as exc:  # noqa: BLE001 - the hub raises many classes; all mean "cannot use this id"
        at = f" at revision {revision!r}" if revision else ""
        raise InputError(
            f"key 'model': {repo_id!r}{at} is not on the Hugging Face hub nor in its local cache "
            f"({type(exc).__name__}: {exc}); check the id and the revision, log in for a gated model, or "
            "point `model` at a directory saved with save_pretrained"
        ) from None
    return Path(snapshot), Path(snapshot).name


def model_classes(config: Mapping[str, Any], where: Path) -> list[str]:
    """The model's class names in its output order, from config.json's `id2label`."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise InputError(
            f"key 'model': {where} has no id2label; set `label_names` to the model's classes in its "
            "output order"
        )
    try:
        order = sorted((int(i), str(name)) for i, name in id2label.items())
    except ValueError:
        raise InputError(f"key 'model': {where}: id2label's keys are not class indices") from None
    if [i for i, _ in order] != list(range(len(order))):
        raise InputError(f"key 'model': {where}: id2label's indices are not 0 to {len(order) - 1}")
    return [name for _, name in order]


def match_classes(outputs: Sequence[str], classes: Sequence[str], given: bool) -> list[int | None]:
    """For each of the model's outputs, the task's class it names (None: no class of the task), by name
    as hf-inference matches a server's labels; a task class no output names, or named by two outputs,
    is a ConfigError."""
    key = "label_names" if given else "model"
    source = "label_names" if given else "the model's id2label"
    index = NameIndex(classes)
    mapped: list[int | None] = [index.find(name) for name in outputs]
    seen: dict[int, str] = {}
    for name, c in zip(outputs, mapped, strict=True):
        if c is None:
            continue
        if c in seen:
            raise ConfigError(
                f"key {key!r}: {source} names the class {classes[c]!r} twice ({seen[c]!r} and {name!r}), "
                "so its score would be a guess between them",
                key=key,
            )
        seen[c] = name
    missing = [name for c, name in enumerate(classes) if c not in seen]
    if missing:
        shown = ", ".join(repr(n) for n in outputs[:12]) + (" ..." if len(outputs) > 12 else "")
        raise ConfigError(
            f"key {key!r}: {source} has no class for {missing[:5]} of the task (the model's classes: "
            f"{shown}); set `label_names` to the model's classes in its output order, spelt as the task's",
            key=key,
        )
    return mapped


class TransformersSuspect:
    """A `transformers` image classifier in this process, answering labels and probabilities over the
    task's classes; loaded on `load()` or on the first `predict`."""

    returns = "probabilities"
    label_names = None  # answers are already in the task's classes, matched by name
    cost = QueryCost(remote=False)

    def __init__(self, settings: Mapping[str, Any], task: Task) -> None:
        missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        if missing:  # said when the audit file is loaded, not when the suspect is first asked
            raise InputError(f"use = 'transformers' needs {' and '.join(missing)}: {INSTALL_HINT}")
        self.task = task
        self.batch_size = settings["batch_size"]
        self.device_name = settings["device"]
        self.threads = settings["threads"]
        value, revision = settings["model"], settings["revision"]
        folder = Path(value).expanduser()
        if folder.is_dir():
            if revision is not None:
                raise ConfigError(
                    "key 'revision': a revision names a version of a hub model; `model` is a local "
                    f"directory ({folder}), so leave it out",
                    key="revision",
                )
            self.location, self.commit = str(folder.resolve()), None
            configs = folder
        else:
            configs, self.commit = _resolve_hub(value, revision)
            self.location = value
        for name in ("config.json", "preprocessor_config.json"):
            if not (configs / name).is_file():
                what = "image processor" if name.startswith("pre") else "model"
                raise InputError(
                    f"key 'model': {value!r} has no {name}; save the {what} there with save_pretrained "
                    "(`model.save_pretrained(dir)` and `processor.save_pretrained(dir)`)"
                )
        config = _read_json(configs / "config.json", "model")
        given = settings["label_names"] is not None
        self.names_from = "label_names" if given else "id2label"
        self.outputs = list(settings["label_names"] or model_classes(config, configs / "config.json"))
        self.classes_of_outputs = match_classes(self.outputs, task.classes, given)
        self.files = self._hash_files() if self.commit is None else {}
        source = (
            {"files_sha256": self.files} if self.commit is None else {"hub_id": value, "commit": self.commit}
        )
        self.identity = {
            "adapter": "transformers",
            "plugin_version": __version__,
            **source,
            "outputs": [
                None if c is None else task.classes[c] for c in self.classes_of_outputs
            ],  # which output answers which class of the task
        }
        self._model: Any = None
        self._processor: Any = None
        self.answered = 0
        self.unknown_top = 0  # images whose best output names no class of the task: not answered

    def _hash_files(self) -> dict[str, str]:
        """The SHA-256 of every file of the folder (hidden files and folders aside: `.cache/` of a hub
        download), by path relative to it."""
        root = Path(self.location)
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        return {p.relative_to(root).as_posix(): file_sha256(p) for p in files}

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Import transformers, load the image processor and the model, and check the folder's files are
        still those the identity names; InputError where the model cannot serve."""
        if self._model is not None:
            return
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise InputError(
                f"use = 'transformers' needs torch and transformers ({INSTALL_HINT}): {exc}"
            ) from None
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        bars = transformers.utils.logging.is_progress_bar_enabled()
        transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars on every audit
        kwargs = {} if self.commit is None else {"revision": self.commit}
        try:
            processor = AutoImageProcessor.from_pretrained(self.location, **kwargs)
            model = AutoModelForImageClassification.from_pretrained(self.location, **kwargs)
        except Exception as exc:  # noqa: BLE001 - transformers raises OSError, ValueError, KeyError...
            raise InputError(
                f"key 'model': {self.location!r} cannot be loaded as an image classifier with its image "
                f"processor ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''})"
            ) from None
        finally:
            if bars:
                transformers.utils.logging.enable_progress_bar()
        if model.config.num_labels != len(self.outputs):
            raise InputError(
                f"key 'model': the model has {model.config.num_labels} outputs but "
                f"{len(self.outputs)} class names in {self.names_from}"
            )
        root = Path(self.location)
        for name, expected in self.files.items():  # loaded from the files the identity names
            check_loaded(root / name, expected, file_sha256(root / name))
        self.device = _pick_device(self.device_name)
        self._processor = processor
        self._model = model.to(self.device).eval()
        self._columns = torch.tensor(
            [j for j, c in enumerate(self.classes_of_outputs) if c is not None], dtype=torch.long
        )
        order = [c for c in self.classes_of_outputs if c is not None]
        self._task_order = np.argsort(order)  # the kept outputs, put in the task's class order

    def predict(self, images: np.ndarray) -> Answers:
        """Labels and probabilities over the task's classes for uint8 RGB images (N, H, W, 3)."""
        import torch

        self.load()
        labels, probabilities = [], []
        # On the CPU: the cores the load leaves idle (trainprove_core.threads), unless `threads` fixes it.
        cpu = self.device.type == "cpu"
        policy = threads.torch_threads(self.threads if cpu else torch.get_num_threads(), "inference")
        with torch.inference_mode(), policy:
            for start in range(0, len(images), self.batch_size):
                batch = list(images[start : start + self.batch_size])
                # Channels last said outright: a processor guesses the layout from the shape otherwise.
                pixels = self._processor(
                    images=batch, return_tensors="pt", input_data_format="channels_last"
                )["pixel_values"]
                logits = self._model(pixel_values=pixels.to(self.device, self._model.dtype)).logits
                p = torch.softmax(logits.double(), dim=1).cpu().numpy()
                best = p.argmax(axis=1)
                kept = p[:, self._columns.numpy()][:, self._task_order]
                mapped = np.array(
                    [NOT_ANSWERED if c is None else c for c in self.classes_of_outputs], dtype=np.int64
                )
                labels.append(mapped[best])
                probabilities.append((kept / kept.sum(axis=1, keepdims=True)).astype(np.float32))
        label = np.concatenate(labels)
        self.answered += len(label)
        self.unknown_top += int((label == NOT_ANSWERED).sum())
        return Answers(label, np.concatenate(probabilities))

    @property
    def remarks(self) -> list[str]:
        """The model's classes that are no class of the task, if any, and the images they cost."""
        extra = [name for name, c in zip(self.outputs, self.classes_of_outputs, strict=True) if c is None]
        if not extra:
            return []
        shown = ", ".join(repr(n) for n in extra[:5]) + (" ..." if len(extra) > 5 else "")
        return [
            f"{len(extra)} of the model's {len(self.outputs)} classes are not in the task and were not "
            f"mapped to any class ({shown}); {self.unknown_top} of {self.answered} images whose best class "
            "was one of them count as not answered"
        ]


def _pick_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu."""
    import torch

    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
