"""The errors of the user-management services: one base class, each with the field at fault.

Every refusal is a :class:`ManagementError` whose ``str()`` is a sentence a
person understands and whose ``field`` names the input at fault (``key``,
``name``, ``email``, ``team``, ``workspace``, ``at``), so a form shows the
message next to that field and the CLI prints it on standard error.
Nothing is written before a refusal.
"""

from __future__ import annotations


class ManagementError(ValueError):
    """A user-management change that is refused; nothing was changed."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NotFound(ManagementError, LookupError):
    """The workspace, team or person named does not exist."""


class Conflict(ManagementError):
    """The change clashes with what exists: a taken key or e-mail, an owner, the last owner."""


class HistoryConflict(ManagementError):
    """The change at the instant given would contradict history recorded after it."""
