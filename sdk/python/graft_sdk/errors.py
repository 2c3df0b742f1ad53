"""Errors a plugin raises on purpose."""

from __future__ import annotations

from typing import Iterable, Optional


class PluginError(Exception):
    """A failure the plugin reports (not a crash): graft logs ``message``
    and, for a configuration problem, the key ``field`` (a dotted path such
    as ``servers[1].port``)."""

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @classmethod
    def config(cls, field: str, message: str) -> "PluginError":
        """An error about config key ``field``."""
        return cls(message, field)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class Retry(Exception):
    """An output could not write now: graft keeps the batch and writes it again later."""


class Reject(Exception):
    """The metrics will never be accepted: graft counts and drops the batch."""


class Partial(Exception):
    """Some metrics of the batch were written (``accepted``, indices into the
    batch) and some can never be (``rejected``); graft keeps the rest."""

    def __init__(self, accepted: Iterable[int], rejected: Iterable[int], message: str = "") -> None:
        super().__init__(message)
        self.accepted = list(accepted)
        self.rejected = list(rejected)
        self.message = message
