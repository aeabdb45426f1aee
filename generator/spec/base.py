"""Shared building blocks of the spec schema: strict models, safe names, paths relative to the spec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


INT32_MAX = 2**31 - 1
"""Triton's protobuf stores counts, sizes and dims as 32/64-bit integers: every integer is bounded."""
_WIDE_FIELDS = {"max_queue_delay_us": 2**63 - 1, "default_timeout_us": 2**63 - 1}  # uint64 in model_config.proto


def _bounded(value: Any, limit: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -limit - 1 <= value <= limit:
        raise ValueError(f"{value} is out of range: integers here must be between {-limit - 1} and {limit}")
    if isinstance(value, (list, tuple)):
        for item in value:
            _bounded(item, limit)
    if isinstance(value, dict):
        for item in value.values():
            _bounded(item, limit)
    return value


class StrictModel(BaseModel):
    """Unknown keys are errors; values are immutable once validated; numbers are finite and bounded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _in_range(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse integers Triton's config cannot hold (a 1e30 max_batch_size is a typo, not a request)."""
        return _bounded(value, _WIDE_FIELDS.get(info.field_name or "", INT32_MAX))


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
