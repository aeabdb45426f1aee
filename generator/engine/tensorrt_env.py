"""Finding TensorRT and the GPU it builds for, without ever importing either at module import time.

`import tensorrt` succeeding proves little: the type-stub package creates an empty namespace package
of that name, and a wheel without its libraries fails later. So TensorRT counts as installed only when
the module has `Builder` and a `__version__`.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ..errors import GeneratorError

log = logging.getLogger(__name__)

MISSING = (
    "TensorRT is not installed: on a machine with an NVIDIA GPU and CUDA run "
    '`pip install "trgen[tensorrt]"`, or work inside the NGC container nvcr.io/nvidia/tensorrt:<yy.mm>-py3 '
    "(see docs/gpu.md)"
)
SUPPORTED_MAJORS = (10, 11)


def load_tensorrt() -> Any:
    """The real `tensorrt` module, or a one-line GeneratorError saying how to get it."""
    try:
        # importlib, not `import tensorrt`: mypy would follow the import into the tensorrt-stubs files,
        # which do not parse (see trt_api.py); the TensorRT surface is typed by trt_api's Protocols.
        trt = importlib.import_module("tensorrt")
    except (ImportError, OSError) as exc:  # OSError: the wheel is there but libnvinfer is not
        raise GeneratorError(f"{MISSING} ({exc.__class__.__name__}: {exc})") from None
    if not hasattr(trt, "Builder") or not isinstance(getattr(trt, "__version__", None), str):
        raise GeneratorError(f"{MISSING} (the importable 'tensorrt' has no Builder: type stubs or a broken install)")
    version = trt.__version__
    major = version_tuple(version)[0]
    if major < SUPPORTED_MAJORS[0]:
        raise GeneratorError(f"TensorRT {version} is too old: trgen needs TensorRT 10 or 11 (`pip install \"trgen[tensorrt]\"`)")
    if major > SUPPORTED_MAJORS[-1]:
        log.warning("TensorRT %s is newer than trgen knows (10, 11): building as for TensorRT 11", version)
    return trt


def version_tuple(version: str) -> tuple[int, int, int]:
    """'10.13.0.35' -> (10, 13, 0); anything after the third number is ignored."""
    numbers = [int(n) for n in re.findall(r"\d+", version)[:3]]
    if not numbers:
        raise GeneratorError(f"cannot read the TensorRT version {version!r}")
    while len(numbers) < 3:
        numbers.append(0)
    return numbers[0], numbers[1], numbers[2]


def is_strongly_typed_only(version: str) -> bool:
    """TensorRT 11 removed weak typing (precision builder flags, calibrators, dynamic ranges)."""
    return version_tuple(version)[0] >= 11


@dataclass(frozen=True)
class GpuInfo:
    """The GPU an engine is built for: engines only run on the compute capability they were built on."""

    name: str
    compute_capability: str  # '9.0'; 'unknown' when neither cuda-python nor nvidia-smi could tell

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "compute_capability": self.compute_capability}


def gpu_info() -> GpuInfo:
    """The first visible GPU (the one TensorRT builds on), via cuda-python, else nvidia-smi."""
    return _gpu_from_cuda_python() or _gpu_from_nvidia_smi() or GpuInfo("unknown", "unknown")


def _gpu_from_cuda_python() -> GpuInfo | None:
    try:
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            from cuda import cudart  # older cuda-python
        err, props = cudart.cudaGetDeviceProperties(0)
        if int(err) != 0:
            return None
        name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        return GpuInfo(name.strip("\x00 "), f"{props.major}.{props.minor}")
    except Exception:  # not installed, no driver, no device: fall back to nvidia-smi
        return None


def _gpu_from_nvidia_smi() -> GpuInfo | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [[part.strip() for part in line.split(",")] for line in out.splitlines() if line.count(",") >= 2]
    if not rows:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    row = next((r for r in rows if r[0] == visible), rows[0])
    return GpuInfo(row[1], row[2])
