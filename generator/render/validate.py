"""Compatibility shim: validation lives in `generator.validation` (imports less, so it starts faster)."""

from __future__ import annotations

from ..validation.repository import CONFIG, RULES, validate_repository

__all__ = ["CONFIG", "RULES", "validate_repository"]
