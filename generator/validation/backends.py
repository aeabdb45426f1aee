"""Which backend serves a model folder: Triton core's `AutoCompleteBackendFields`, mirrored.

Triton fills `backend`, `platform` and `default_model_filename` server-side before it validates,
with or without `--disable-auto-complete-config`: from `platform`, else `backend`, else
`default_model_filename`, else the files in the *first* version folder (lexicographic order of
all sub-folders, as core's `GetDirectorySubdirs` returns them), else the folder suffix
`<name>.<backend>` (a custom backend). Validation must see the same completed fields, or it raises
false alarms on configs Triton accepts (a python model with only `model.py`, `empty_config.identity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ENSEMBLE = "ensemble"
PLATFORMS = {  # platform -> backend (core constants.h)
    "tensorrt_plan": "tensorrt",
    "tensorflow_graphdef": "tensorflow",
    "tensorflow_savedmodel": "tensorflow",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    ENSEMBLE: "",
}
# backends whose platform core checks against the backend (GetBackendType / GetBackendTypeFromPlatform)
TYPED_BACKENDS = {"tensorrt", "tensorflow", "onnxruntime", "pytorch"}
STANDARD_BACKENDS = TYPED_BACKENDS | {"python", "openvino", "identity", "repeat", "square", "fil", "dali",
                                      "tensorrtllm", "vllm"}
# default model file per backend (core constants.h); a folder for savedmodel, file or folder for onnx
DEFAULT_FILES = {
    "tensorrt": "model.plan",
    "onnxruntime": "model.onnx",
    "pytorch": "model.pt",
    "python": "model.py",
    "openvino": "model.xml",
}
TF_FILES = {"tensorflow_savedmodel": "model.savedmodel", "tensorflow_graphdef": "model.graphdef"}
# backends that read inputs/outputs (and max_batch_size) from the model file when auto-complete is on
AUTO_COMPLETES_IO = {"tensorrt", "onnxruntime", "openvino", "tensorflow", "python"}


@dataclass(frozen=True)
class Completed:
    """The backend fields after Triton's server-side completion."""

    backend: str
    platform: str
    default_model_filename: str
    error: str = ""  # Triton's own message when no backend can be determined


def complete(folder: Path, name: str, platform: str, backend: str, filename: str) -> Completed:
    """`AutoCompleteBackendFields` for the model folder `folder` whose config sets these fields."""
    first = _first_version(folder)

    def present(entry: str, want_dir: bool | None = None) -> bool:
        if first is None:
            return False
        path = first / entry
        if want_dir is None:
            return path.exists()
        return path.is_dir() if want_dir else (path.exists() and not path.is_dir())

    if not platform and backend in ("", "tensorflow"):
        if filename in TF_FILES.values():
            platform = next(p for p, f in TF_FILES.items() if f == filename)
        elif not filename:
            if present("model.savedmodel", want_dir=True):
                platform = "tensorflow_savedmodel"
            if present("model.graphdef", want_dir=False):
                platform = "tensorflow_graphdef"
    if platform in TF_FILES:
        return Completed(backend or "tensorflow", platform, filename or TF_FILES[platform])
    guesses = (  # backend, its platform, its file, the file must not be a folder
        ("tensorrt", "tensorrt_plan", "model.plan", True),
        ("onnxruntime", "onnxruntime_onnx", "model.onnx", False),
        ("openvino", "", "model.xml", False),
        ("pytorch", "pytorch_libtorch", "model.pt", True),
        ("python", "", "model.py", False),
    )
    for guess, guess_platform, guess_file, file_only in guesses:
        named = bool(guess_platform and platform == guess_platform) or filename == guess_file
        found = not platform and not filename and present(guess_file, want_dir=False if file_only else None)
        if not backend and (named or found):
            backend = guess
        if backend == guess:
            return Completed(backend, platform or guess_platform, filename or guess_file)
    if not backend and not platform and not filename:
        if "." not in name:
            return Completed("", "", "", (
                f"Invalid model name: Could not determine backend for model '{name}' with no backend in model "
                "configuration. Expected model name of the form 'model.<backend_name>'."
            ))
        custom = name.split(".", 1)[1]
        return Completed(custom, "", f"model.{custom}")
    return Completed(backend, platform, filename)


def _first_version(folder: Path) -> Path | None:
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    except OSError:
        return None
    return folder / names[0] if names else None
