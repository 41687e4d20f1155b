"""The two exception families of ktrack.

``UserError``: the input is wrong (a malformed patch, an unknown version, a broken manifest).
``InfraError``: our infrastructure failed (network, disk, missing tool, our own timeout).

The CLI maps them to exit codes 2 and 3. A stage never turns an ``InfraError`` into a ``fail``
verdict: it is recorded as ``error``.
"""

from __future__ import annotations


class KtrackError(Exception):
    """Base of every error ktrack reports to the user in one line."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UserError(KtrackError):
    """Bad input or usage: exit code 2."""

    exit_code = 2


class InfraError(KtrackError):
    """Infrastructure failure (network, disk, tool, timeout): exit code 3. Never a verdict."""

    exit_code = 3
