"""Shared building blocks of the spec schema: strict models, safe names, paths relative to the spec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


class StrictModel(BaseModel):
    """Unknown keys are errors; values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


def _safe_name(value: str) -> str:
    """Names become folder names in the model repository: refuse anything that could escape it."""
    if value in {".", ".."} or not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a safe name: use letters, digits, '_', '-', '.' (no path separators, "
            "not starting with '.' or '-', at most 128 characters)"
        )
    return value


Name = Annotated[str, AfterValidator(_safe_name)]


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """Relative paths resolve against the spec file's folder (passed as validation context)."""
    base = (info.context or {}).get("base_dir")
    value = Path(value).expanduser()
    if not value.is_absolute() and base is not None:
        value = Path(base) / value
    return Path(value.as_posix()) if base is None else value.resolve()


def _must_exist(value: Path, info: ValidationInfo) -> Path:
    if (info.context or {}).get("check_files", True) and not value.exists():
        raise ValueError(f"file not found: {value} (paths are relative to the spec file's folder)")
    return value


SpecPath = Annotated[Path, AfterValidator(_resolve)]
"""A path written in the spec, resolved against the spec's folder."""

ExistingPath = Annotated[Path, AfterValidator(_resolve), AfterValidator(_must_exist)]
"""A spec path that must already exist when the spec is loaded."""
