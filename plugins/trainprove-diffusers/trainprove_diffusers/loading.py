"""Where a pipeline comes from, what it is (its identity), and on which device and dtype it runs.

A model setting is either a local directory in diffusers' `save_pretrained` layout or a Hugging Face hub id.
A local directory is identified by a hash of every file in it (weights, configs, tokenizer); a hub id by the
commit its revision resolves to, so "main" moving on upstream changes the identity and the cache. Every
failure a user can fix is an `InputError` that names the audit-file setting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainprove_core import InputError

DTYPES = ("auto", "fp16", "bf16", "fp32")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelSource:
    """One model location, resolved: a local directory, or a hub id pinned to a commit.

    `setting` is the audit-file key that named it, so errors and reports can point back at the file.
    """

    setting: str
    location: str
    local: bool
    commit: str | None = None

    def identity(self) -> dict[str, Any]:
        """What the images depend on: the hub id and commit, or the SHA-256 of the directory's files."""
        if self.local:
            return {"directory_sha256": directory_sha256(Path(self.location))}
        return {"hub_id": self.location, "commit": self.commit}

    def from_pretrained_args(self) -> dict[str, Any]:
        """Keyword arguments that make `from_pretrained` load exactly this source."""
        return {} if self.local else {"revision": self.commit}


def resolve_source(value: str, revision: str | None, setting: str) -> ModelSource:
    """Resolve a `model`-like setting: a directory holding `model_index.json`, or a hub id.

    A hub id's revision is resolved to a commit through the local Hugging Face cache or the hub (whichever
    huggingface_hub's offline setting allows); only `model_index.json` is fetched here, the weights are
    fetched when the pipeline is first loaded.
    """
    path = Path(value).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InputError(
                f"{setting} = {value!r}: the directory has no model_index.json; expected a pipeline saved "
                "with diffusers' save_pretrained (or a hub id such as 'org/name')"
            )
        return ModelSource(setting, str(path.resolve()), local=True)
    if path.exists() or value.startswith((".", "/", "~")) or value.count("/") != 1:
        raise InputError(f"{setting} = {value!r}: not a directory and not a hub id of the form 'org/name'")
    return ModelSource(setting, value, local=False, commit=_resolve_commit(value, revision, setting))


def _resolve_commit(repo_id: str, revision: str | None, setting: str) -> str:
    from huggingface_hub import snapshot_download

    try:
        snapshot = snapshot_download(repo_id, revision=revision, allow_patterns=["model_index.json"])
    except Exception as exc:  # noqa: BLE001 - hub errors come in many classes; all mean "cannot use this id"
        at = f" at revision {revision!r}" if revision else ""
        raise InputError(
            f"{setting} = {repo_id!r}{at}: cannot find it on the Hugging Face hub or in the local cache "
            f"({type(exc).__name__}: {exc}). Check the id and the revision, log in for gated models, or "
            f"point {setting} at a local directory saved with save_pretrained"
        ) from exc
    return Path(snapshot).name


def offline_check(
    revision_setting: str, replaced: tuple[str, str] | None = None
) -> Callable[[str, Mapping[str, Any]], None]:
    """An `Option.check` for a model location, run when the audit file is loaded: when the Hugging Face hub
    is offline (`HF_HUB_OFFLINE`), a hub id must be in the local cache with the weights of every component,
    or the audit would fail later, when the pipeline loads. `replaced` is (component, subfolder setting):
    that component is loaded from the subfolder instead, when the setting is not empty."""

    def check(value: str, settings: Mapping[str, Any]) -> None:
        subfolder = settings.get(replaced[1]) if replaced else None
        problem = offline_problem(
            value, settings.get(revision_setting), {replaced[0]: subfolder} if subfolder else {}
        )
        if problem:
            raise ValueError(problem)

    return check


def offline_problem(
    value: str, revision: str | None, replaced: Mapping[str, str] | None = None
) -> str | None:
    """Why `value` cannot be loaded without the hub, or None. Cheap: it reads the cache, never the network.
    Online, a hub id is left to `resolve_source` (the generator resolves it when it is built)."""
    path = Path(value).expanduser()
    if path.is_dir():
        return None  # the generator checks the directory when it is built
    if path.exists() or value.startswith((".", "/", "~")) or value.count("/") != 1:
        return f"{value!r} is not a directory and not a hub id of the form 'org/name'"
    from huggingface_hub import constants, try_to_load_from_cache

    if not constants.HF_HUB_OFFLINE:
        return None
    at = f" at revision {revision!r}" if revision else ""
    index = try_to_load_from_cache(value, "model_index.json", revision=revision)
    fix = (
        f"download it first (`hf download {value}`), unset HF_HUB_OFFLINE, or point it at a local "
        "directory saved with save_pretrained"
    )
    if not isinstance(index, str):
        return (
            f"{value!r}{at} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and the hub is "
            f"offline (HF_HUB_OFFLINE is set): {fix}"
        )
    snapshot = Path(index).parent
    missing = missing_components(snapshot, replaced or {})
    if missing:
        return (
            f"{value!r}{at}: the cached snapshot {snapshot} lacks {', '.join(missing)} (a partial download) "
            f"and the hub is offline (HF_HUB_OFFLINE is set): {fix}"
        )
    return None


def missing_components(snapshot: Path, replaced: Mapping[str, str]) -> list[str]:
    """The components `model_index.json` lists that are absent from a pipeline directory, or whose weights
    are: a folder with a `config.json` (a model) needs a `.safetensors` or `.bin` file."""
    import json

    try:
        index = json.loads((snapshot / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["a readable model_index.json"]
    missing = []
    for name, entry in index.items():
        if name.startswith("_") or not isinstance(entry, list) or not entry or entry[0] is None:
            continue
        folder = snapshot / replaced.get(name, name)
        if not folder.is_dir():
            missing.append(f"{folder.name}/")
        elif (folder / "config.json").is_file() and not any(
            p.suffix in (".safetensors", ".bin") and p.is_file() for p in folder.iterdir()
        ):
            missing.append(f"the weights of {folder.name}/")
    return missing


_hash_memo: dict[tuple, str] = {}


def directory_sha256(directory: Path) -> str:
    """SHA-256 over the relative paths and contents of every file under `directory`, in sorted order.

    Hashing a few gigabytes of weights takes seconds; the result is remembered for the process, keyed on
    every file's size and modification time, so a generator built twice does not hash twice.
    """
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if stamp in _hash_memo:
        return _hash_memo[stamp]
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.relative_to(directory).as_posix().encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                digest.update(chunk)
    _hash_memo[stamp] = digest.hexdigest()
    return _hash_memo[stamp]


def load_from(source: ModelSource, what: str, load: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a diffusers `from_pretrained` on `source`; turn its failures into an `InputError` that names
    the setting (a missing component, a missing weight file, a config of another pipeline...)."""
    try:
        return load(source.location, **source.from_pretrained_args(), **kwargs)
    except Exception as exc:  # noqa: BLE001 - diffusers raises OSError, ValueError, KeyError... for bad input
        raise InputError(
            f"{source.setting} = {source.location!r}: cannot load the {what} from it "
            f"({type(exc).__name__}: {exc})"
        ) from exc


# ---- device and dtype -----------------------------------------------------------------------------------


def resolve_device(value: str) -> str:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist here."""
    import torch

    if value == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind, _, index = value.partition(":")
    if kind == "cpu" and not index:
        return value
    if kind == "cuda" and (not index or index.isdigit()):
        if not torch.cuda.is_available():
            raise InputError(f"device = {value!r}: no CUDA device is visible to PyTorch on this machine")
        if index and int(index) >= torch.cuda.device_count():
            raise InputError(
                f"device = {value!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        return value
    if kind == "mps" and not index:
        if not torch.backends.mps.is_available():
            raise InputError("device = 'mps': Apple's Metal backend is not available on this machine")
        return value
    raise InputError(f"device = {value!r}: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


def resolve_dtype(value: str, device: str, gpu_default: str) -> str:
    """The dtype name to run in. `auto` is the backend's GPU dtype on cuda, fp16 on mps, fp32 on the CPU;
    an explicit dtype must pass a small probe (matrix product, convolution, group norm) on the device."""
    if value not in DTYPES:
        raise InputError(f"dtype = {value!r}: expected one of {', '.join(DTYPES)}")
    if value == "auto":
        if device.startswith("cuda"):
            import torch

            return "bf16" if gpu_default == "bf16" and torch.cuda.is_bf16_supported() else "fp16"
        return "fp16" if device == "mps" else "fp32"
    _probe(value, device)
    return value


def torch_dtype(name: str) -> Any:
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def _probe(name: str, device: str) -> None:
    import torch
    import torch.nn.functional as F

    dtype = torch_dtype(name)
    try:
        x = torch.ones(1, 4, 8, 8, dtype=dtype, device=device)
        y = F.group_norm(F.conv2d(x, torch.ones(4, 4, 3, 3, dtype=dtype, device=device)), 2)
        (y.flatten(1) @ y.flatten(1).T).softmax(-1).sum().item()
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"dtype = {name!r} cannot run on device {device!r} ({exc}); use 'auto' or another dtype"
        ) from exc
