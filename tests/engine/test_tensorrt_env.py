"""Finding TensorRT's version rules and the GPU without importing either at module import."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from generator.engine.tensorrt_env import gpu_info, is_strongly_typed_only, version_tuple
from generator.errors import GeneratorError


def test_version_rules() -> None:
    assert version_tuple("10.13.0.35") == (10, 13, 0) and version_tuple("11.0") == (11, 0, 0)
    assert not is_strongly_typed_only("10.16.1") and is_strongly_typed_only("11.4.0.2")
    with pytest.raises(GeneratorError, match="cannot read the TensorRT version"):
        version_tuple("unknown")


def test_gpu_from_nvidia_smi_follows_cuda_visible_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '0, NVIDIA H100 80GB HBM3, 9.0\\n1, NVIDIA A100-SXM4-40GB, 8.0\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "cuda", None)  # no cuda-python: nvidia-smi is the fallback
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    gpu = gpu_info()
    assert (gpu.name, gpu.compute_capability) == ("NVIDIA A100-SXM4-40GB", "8.0")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gpu_info().compute_capability == "9.0"


def test_no_gpu_tools_means_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "cuda", None)
    assert gpu_info().to_dict() == {"name": "unknown", "compute_capability": "unknown"}
