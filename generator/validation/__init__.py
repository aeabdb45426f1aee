"""`trgen validate`: Triton's model-configuration rules, checked offline on any model repository.

Kept outside `generator.render` so that validating imports only what validation needs (the
renderer pulls in the spec models, jinja2 and numpy).
"""

from __future__ import annotations

from .problems import Problem
from .repository import validate_repository

__all__ = ["Problem", "validate_repository"]
