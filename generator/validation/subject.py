"""The model folder a validation rule looks at: parsed config, completed backend, versions, its repository."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backends import DEFAULT_FILES, ENSEMBLE, Completed, complete

_KIND_BY_PLATFORM = {"tensorrt_plan": "tensorrt", "onnxruntime_onnx": "onnxruntime", "pytorch_libtorch": "pytorch"}


@dataclass(eq=False)
class ModelUnderCheck:
    """One `<repo>/<folder>/` with its parsed config.pbtxt (empty when the folder has none)."""

    dir: Path
    config: Any  # model_config_pb2.ModelConfig, as written
    repo: dict[str, ModelUnderCheck | None] = field(default_factory=dict)  # folder -> model (None: unparsable)
    strict: bool = False  # --disable-auto-complete-config: nothing is read from model files
    has_config: bool = True

    @property
    def folder(self) -> str:
        return self.dir.name

    @property
    def name(self) -> str:
        return str(self.config.name or self.folder)

    @property
    def batching(self) -> bool:
        return bool(self.config.max_batch_size > 0)

    @functools.cached_property
    def completed(self) -> Completed:
        """backend / platform / default_model_filename as Triton completes them server-side."""
        c = self.config
        return complete(self.dir, self.folder, c.platform, c.backend, c.default_model_filename)

    @property
    def backend(self) -> str:
        return self.completed.backend

    @property
    def platform(self) -> str:
        return self.completed.platform

    @property
    def kind(self) -> str:
        """'python', 'onnxruntime', 'tensorrt', 'pytorch', 'ensemble', another backend's name, or ''."""
        if self.platform == ENSEMBLE:
            return ENSEMBLE
        return self.backend or _KIND_BY_PLATFORM.get(self.platform, "")

    @property
    def is_tensorrt(self) -> bool:
        """Core compares `platform` (after completion) with tensorrt_plan for TensorRT-only fields."""
        return self.platform == "tensorrt_plan"

    @property
    def model_filename(self) -> str | None:
        """The file each version folder must hold (None: a custom backend decides, or an ensemble)."""
        if self.kind == ENSEMBLE:
            return None
        if self.config.default_model_filename:
            return str(self.config.default_model_filename)
        if self.kind in DEFAULT_FILES or self.kind == "tensorflow":
            return self.completed.default_model_filename or None
        return None

    def version_folders(self) -> list[int]:
        """Numeric version folders Triton considers (names starting with 0 are ignored)."""
        if not self.dir.is_dir():
            return []
        names = [p.name for p in self.dir.iterdir() if p.is_dir() and p.name.isdigit()]
        return sorted(int(n) for n in names if not n.startswith("0"))

    def loaded_versions(self) -> list[int]:
        """The versions the version policy selects among the existing folders (default: latest 1)."""
        present = self.version_folders()
        policy: Any = self.config.version_policy
        choice = policy.WhichOneof("policy_choice")
        if choice == "all":
            return present
        if choice == "specific":
            return [v for v in present if v in set(policy.specific.versions)]
        count = policy.latest.num_versions if choice == "latest" else 1
        return present[-max(count, 1):] if present else []

    def where(self) -> tuple[str, ...]:
        """Config path of the field that chose the backend (for problems about model files)."""
        if self.config.backend:
            return ("backend",)
        return ("platform",) if self.config.platform else ("name",)

    def member(self, name: str) -> ModelUnderCheck | None:
        """Another model of the repository by name (None if absent or its config does not parse)."""
        return self.repo.get(name)
