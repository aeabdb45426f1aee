"""The model folder a validation rule looks at: parsed config, platform kind, version folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tritonclient.grpc import model_config_pb2

# platform / backend -> the kind of model, and the file Triton loads from a version folder
_BY_PLATFORM = {
    "ensemble": "ensemble",
    "tensorrt_plan": "tensorrt",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
}
_BY_BACKEND = {"tensorrt": "tensorrt", "onnxruntime": "onnxruntime", "python": "python", "pytorch": "pytorch"}
DEFAULT_FILES = {"python": "model.py", "onnxruntime": "model.onnx", "tensorrt": "model.plan", "pytorch": "model.pt"}
_AUTO_COMPLETE = {"model.onnx": "onnxruntime", "model.plan": "tensorrt", "model.pt": "pytorch"}


@dataclass(frozen=True)
class ModelUnderCheck:
    """One `<repo>/<folder>/` with its parsed config.pbtxt."""

    dir: Path
    config: "model_config_pb2.ModelConfig"
    repo_models: frozenset[str]

    @property
    def folder(self) -> str:
        return self.dir.name

    @property
    def batching(self) -> bool:
        return bool(self.config.max_batch_size > 0)

    @property
    def kind(self) -> str:
        """'python', 'onnxruntime', 'tensorrt', 'pytorch', 'ensemble', another backend's name, or ''."""
        platform, backend = self.config.platform, self.config.backend
        kind = _BY_PLATFORM.get(platform) or _BY_BACKEND.get(backend) or backend or platform
        if kind:
            return kind
        # no platform nor backend: Triton auto-completes from the model file's name
        for version in self.loaded_versions():
            for name, inferred in _AUTO_COMPLETE.items():
                if (self.dir / str(version) / name).exists():
                    return inferred
        return ""

    @property
    def model_filename(self) -> str | None:
        """The file each version folder must hold (None: unknown backend, or an ensemble)."""
        return self.config.default_model_filename or DEFAULT_FILES.get(self.kind)

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
        """Config path of the field that chose the platform (for problems about model files)."""
        return ("backend",) if self.config.backend else ("platform",)
