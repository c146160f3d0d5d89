"""Errors a user can act on. The CLI prints their message as one paragraph, without a traceback."""

from __future__ import annotations


class TrainproveError(Exception):
    """Base class: something the user can fix, described in the message."""


class PluginError(TrainproveError):
    """A plugin is unknown, broken, or collides with another."""


class ConfigError(TrainproveError):
    """The audit file is malformed or names something wrong. The message names the file and the key."""

    def __init__(self, message: str, file: str | None = None, key: str | None = None) -> None:
        where = ""
        if file and key:
            where = f"{file}: [{key}] "
        elif file:
            where = f"{file}: "
        elif key:
            where = f"[{key}] "
        super().__init__(f"{where}{message}")
        self.file = file
        self.key = key


class InputError(TrainproveError):
    """A checkpoint, model directory, endpoint or label space is missing, corrupt, or does not fit."""


class BudgetExceeded(TrainproveError):
    """A suspect's query budget would be exceeded; answers already paid for stay cached."""


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM: a batch system's time limit, `timeout`, `docker stop`).
    `trainprove` ends as on Ctrl-C, keeping what the store holds, with exit code 143."""
