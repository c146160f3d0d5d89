"""One MLflow run per audit: what it logs, and where.

Where is MLflow's own configuration: `MLFLOW_TRACKING_URI` (a tracking server, `sqlite:///mlflow.db`,
`databricks` ...) and `MLFLOW_EXPERIMENT_NAME` (default "trainprove"), or, in a process that already has
an active MLflow run (a notebook inside `with mlflow.start_run():`), that run's store and experiment, the
audit logged as a run nested under it. With neither, nothing is logged and mlflow is not even imported.

What: the audit file as it ran (secrets masked: the report's manifest) as params, flattened to dotted
keys (`task.image_size`, `suspect.vendor.checkpoint`, `test.trainprove.alpha`); per decision test the
count of each decision and each suspect's p-value as metrics (`verdicts/<test>/<decision>`,
`p_value/<test>/<suspect>`), each suspect's accuracy, the core's counts; each verdict as a tag
(`verdict/<test>/<suspect>`); report.json, report.html and audit.toml as artifacts under `trainprove/`.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from trainprove_core import DECISIONS, InputError

from . import __version__

URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "trainprove"
ARTIFACTS = ("report.json", "report.html", "audit.toml")
PARAM_VALUE_MAX = 6000  # MLflow's limit on a param's value
_BAD_KEY = re.compile(r"[^\w\-. /:]")
_BATCH = {"params": 100, "tags": 100, "metrics": 1000}  # MLflow's limits per log_batch call


def _active_run() -> Any:
    """The MLflow run active in this process, without importing mlflow where no one did."""
    mlflow = sys.modules.get("mlflow")
    return mlflow.active_run() if mlflow is not None and hasattr(mlflow, "active_run") else None


def enabled() -> bool:
    """Whether audits are logged: a tracking URI is set, or a run is active in this process."""
    return bool(os.environ.get(URI_ENV)) or _active_run() is not None


def shown_uri(uri: str) -> str:
    """`uri` without a user or password (`https://user:pass@host` -> `https://host`)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Target:
    """The tracking store, the experiment and (in a notebook's run) the parent run an audit logs to."""

    def __init__(self) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        parent = _active_run()
        self.uri = os.environ.get(URI_ENV) or mlflow.get_tracking_uri()
        self.parent = parent.info.run_id if parent is not None else None
        name = os.environ.get(EXPERIMENT_ENV)
        where = f"{URI_ENV}={shown_uri(self.uri)!r}"
        try:
            self.client = MlflowClient(self.uri)
            if name is None and parent is not None:
                self.experiment_id, self.experiment = parent.info.experiment_id, None
            else:
                self.experiment = name or DEFAULT_EXPERIMENT
                found = self.client.get_experiment_by_name(self.experiment)
                self.experiment_id = (
                    found.experiment_id if found else self.client.create_experiment(self.experiment)
                )
        except Exception as exc:  # noqa: BLE001 - MLflow raises many classes for a store it cannot use
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise InputError(
                f"mlflow: {where}: cannot use this tracking store ({type(exc).__name__}: {message[:300]}); "
                f"set {URI_ENV} to a tracking server or e.g. sqlite:///mlflow.db"
            ) from None

    def log(self, report: Mapping[str, Any], out_dir: Path) -> str:
        """Log the audit of `report` (written to `out_dir`) as one run; its id."""
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.time import get_current_time_millis

        tags = {
            "trainprove.version": str(report.get("trainprove_version")),
            "trainprove.out_dir": str(out_dir),
        }
        tags["trainprove.plugin"] = f"trainprove-mlflow {__version__}"
        if self.parent is not None:
            tags["mlflow.parentRunId"] = self.parent
        run = self.client.create_run(self.experiment_id, run_name=out_dir.name, tags=tags)
        run_id = run.info.run_id
        status = "FAILED"
        try:
            now = get_current_time_millis()
            batches = {
                "params": [Param(k, v) for k, v in params(report).items()],
                "metrics": [Metric(k, v, now, 0) for k, v in metrics(report).items()],
                "tags": [RunTag(k, v) for k, v in verdict_tags(report).items()],
            }
            for kind, items in batches.items():
                for chunk in _chunks(items, _BATCH[kind]):
                    self.client.log_batch(run_id, **{kind: chunk})
            for name in ARTIFACTS:
                if (out_dir / name).is_file():
                    self.client.log_artifact(run_id, str(out_dir / name), artifact_path="trainprove")
            status = "FINISHED"
        finally:
            self.client.set_terminated(run_id, status)
        return run_id


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def key(*parts: Any) -> str:
    """An MLflow key from `parts`: characters MLflow refuses become `_`."""
    return _BAD_KEY.sub("_", "/".join(str(p) for p in parts))


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, table in enumerate(value):  # an array of tables ([[suspect]]): each by its name
            label = table.get("name") or table.get("use") or i
            _flatten({k: v for k, v in table.items() if k != "name"}, f"{prefix}.{label}", out)
    elif value is not None:
        text = value if isinstance(value, str) else json.dumps(value)
        out[_BAD_KEY.sub("_", prefix)] = (
            text if len(text) <= PARAM_VALUE_MAX else text[: PARAM_VALUE_MAX - 3] + "..."
        )


def params(report: Mapping[str, Any]) -> dict[str, str]:
    """The audit file as it ran (secrets masked), flattened to dotted keys."""
    manifest = report.get("manifest") or {}
    out: dict[str, str] = {}
    _flatten(manifest.get("audit") or {}, "", out)
    if manifest.get("audit_file"):
        out["audit_file"] = str(manifest["audit_file"])
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """Per decision test: how many suspects got each decision (and were right, where the truth is known),
    each suspect's p-value, the test's alpha; each suspect's accuracy; the core's counts."""
    out: dict[str, float] = {}
    verdicts = report.get("verdicts") or []
    for test in dict.fromkeys(v["test"] for v in verdicts):
        mine = [v for v in verdicts if v["test"] == test]
        for decision in DECISIONS:
            out[key("verdicts", test, decision)] = float(sum(v["decision"] == decision for v in mine))
        judged = [v for v in mine if v.get("correct") is not None]
        if judged:
            out[key("verdicts", test, "correct")] = float(sum(bool(v["correct"]) for v in judged))
        for v in mine:
            if (p := _number(v.get("p_value"))) is not None:
                out[key("p_value", test, v["suspect"])] = p
            if (alpha := _number(v.get("alpha"))) is not None:
                out[key("alpha", test)] = alpha
    for suspect in report.get("suspects") or []:
        if (accuracy := _number(suspect.get("accuracy"))) is not None:
            out[key("accuracy", suspect["name"])] = accuracy
    for name, count in (report.get("counts") or {}).items():
        if (n := _number(count)) is not None:
            out[key("counts", name)] = n
    if (seconds := _number(report.get("wall_seconds"))) is not None:
        out["wall_seconds"] = seconds
    out["errors"] = float(len(report.get("errors") or []))
    return out


def verdict_tags(report: Mapping[str, Any]) -> dict[str, str]:
    """Each verdict's decision, searchable (`tags."verdict/trainprove/vendor" = "trained-on-generator"`)."""
    tags = {key("verdict", v["test"], v["suspect"]): str(v["decision"]) for v in report.get("verdicts") or []}
    generator = report.get("generator") or {}
    if generator.get("use"):
        tags["trainprove.generator"] = str(generator["use"])
    return tags
