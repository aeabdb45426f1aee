"""Every module imports without optional extras (TensorRT, CUDA), and the CLI starts."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import generator

# __main__ runs the CLI on import, so it is covered by the `python -m generator` test instead
MODULES = sorted(m.name for m in pkgutil.walk_packages(generator.__path__, prefix="generator.") if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_no_module_imports_tensorrt_at_import_time() -> None:
    code = "import sys, generator.cli, generator.engine, generator.pipeline; print('tensorrt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_help_lists_every_stage() -> None:
    out = subprocess.run([sys.executable, "-m", "generator", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("check", "schema", "calibrate", "quantize", "sensitivity", "build", "verify", "render", "validate",
                    "serve", "compare", "bench", "run"):
        assert f"    {command} " in out or f"    {command}\n" in out, command
