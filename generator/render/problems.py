"""Compatibility shim: `Problem` lives in `generator.validation.problems`."""

from __future__ import annotations

from ..validation.problems import Finding, Problem

__all__ = ["Finding", "Problem"]
