"""Errors a user can cause. The CLI turns them into a plain message and exit code 2."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from a user: a missing or malformed file, an unknown leg id, a bad field.

    The message names the file, the field or the leg so an officer can fix it.
    """

    def __init__(self, message: str, *, source: str | Path | None = None, problems: list[str] | None = None):
        self.source = str(source) if source is not None else None
        self.problems = list(problems or [])
        super().__init__(message)

    def __str__(self) -> str:
        head = super().__str__()
        if self.source and self.source not in head:
            head = f"{self.source}: {head}"
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)
