"""Stage 5: the Triton model repository.

`render_repository` writes one model folder per variant (config.pbtxt from the jinja2 templates in
templates/config/, model files, labels) atomically; `validate_repository` checks any repository
offline against the rules Triton enforces and reports every problem as `file:line: message`.
"""

from __future__ import annotations

from ..artifacts import Artifact
from ..spec import ResolvedVariant
from .problems import Problem
from ..signature import engine_signature_from_json, engine_signature_json, sidecar_path, write_engine_signature
from .validate import validate_repository
from .writer import Repository, render_repository


def render_config(rv: ResolvedVariant, artifact: Artifact) -> str:
    """The config.pbtxt text of one variant (schema-checked), without writing anything."""
    from .context import build_context
    from .template import render_config_text

    return render_config_text(build_context(rv, artifact))


__all__ = [
    "Problem", "Repository", "engine_signature_from_json", "engine_signature_json", "render_config",
    "render_repository", "sidecar_path", "validate_repository", "write_engine_signature",
]
