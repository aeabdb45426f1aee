"""What validation reports: `Finding`s located by field path, turned into `file:line: message`."""

from __future__ import annotations

from dataclasses import dataclass

from .locator import Path


@dataclass(frozen=True)
class Finding:
    """A rule violation, located by the config field it concerns (see `locator.Locator.line`)."""

    path: Path
    message: str


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a model repository, printable as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"
