"""What validation reports: `Finding`s located by field path, turned into `file:line: message`."""

from __future__ import annotations

from dataclasses import dataclass

from .locator import Path

ERROR = "error"
WARNING = "warning"  # Triton enforces it only on some hosts or with some backends: reported, exit code 0


@dataclass(frozen=True)
class Finding:
    """A rule violation, located by the config field it concerns (see `locator.Locator.line`)."""

    path: Path
    message: str
    severity: str = ERROR


def warning(path: Path, message: str) -> Finding:
    """A finding that does not make `trgen validate` fail."""
    return Finding(path, message, WARNING)


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a model repository, printable as `file:line: message`."""

    file: str
    line: int
    message: str
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def __str__(self) -> str:
        tag = "" if self.is_error else f"{self.severity}: "
        return f"{self.file}:{self.line}: {tag}{self.message}"
