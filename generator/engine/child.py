"""Run `job.build_engine` in a child process, so a TensorRT crash (segfault, abort) cannot kill trgen.

As Model Navigator does for its TensorRT conversions: the parent starts `python -m
generator.engine.build_process REQUEST` with stdout and stderr joined into one pipe, echoes every line (the
TensorRT log) to its own stderr and keeps the last few, then reads the child's pickled result. A child
that dies by a signal or exits without a result becomes a one-line `RuntimeFailure` (exit code 4)
quoting its last lines; a `GeneratorError` raised in the child is raised again in the parent as is.

The child re-creates the `tensorrt` module the parent was given: the real one by module name, or a
test double through its `__trgen_factory__ = ("module:function", kwargs)` (importable in the child
because the parent's sys.path is passed on as PYTHONPATH).
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import GeneratorError, RuntimeFailure
from .job import BuildOutput
from .plan import BuildPlan

TrtReference = tuple[str, "dict[str, Any] | None"]
TAIL_LINES = 6


def trt_reference(trt: Any) -> TrtReference:
    """How a child process gets the same `tensorrt`: a module name, or a factory and its arguments."""
    factory = getattr(trt, "__trgen_factory__", None)
    if factory is not None:
        return factory[0], dict(factory[1])
    if isinstance(trt, ModuleType):
        return trt.__name__, None
    raise TypeError(f"cannot re-create {trt!r} in a build process: not a module and no __trgen_factory__")


def load_reference(reference: TrtReference) -> Any:
    name, kwargs = reference
    if kwargs is None:
        from .tensorrt_env import load_tensorrt

        return load_tensorrt() if name == "tensorrt" else importlib.import_module(name)
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)(**kwargs)


def build_isolated(
    trt: Any, plan: BuildPlan, *, calibration_batches: Iterable[Mapping[str, np.ndarray]] | None = None
) -> BuildOutput:
    """`build_engine(trt, plan)` in a child process; see the module docstring for what failures become."""
    batches = calibration_batches if calibration_batches is None or _picklable(calibration_batches) else list(calibration_batches)
    with tempfile.TemporaryDirectory(prefix="trgen-build-") as folder:
        request, result = Path(folder) / "request.pkl", Path(folder) / "result.pkl"
        request.write_bytes(pickle.dumps({
            "trt": trt_reference(trt), "plan": plan, "batches": batches, "result": str(result),
            "log_level": logging.getLogger().getEffectiveLevel(),
        }))
        code, tail = _run_child([sys.executable, "-m", "generator.engine.build_process", str(request)])
        return _outcome(plan, code, result, tail)


def _picklable(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or getattr(value, "picklable", False)


def _run_child(command: list[str]) -> tuple[int, list[str]]:
    """Run `command`, echo its output to our stderr as it comes; (exit status, its last lines)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=env
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(line)
            if line.strip():
                tail.append(line.strip())
        code = process.wait()
    return code, list(tail)


def _outcome(plan: BuildPlan, code: int, result: Path, tail: list[str]) -> BuildOutput:
    where = f"variant {plan.variant}"
    said = " | ".join(tail)[-600:] or "nothing"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        raise RuntimeFailure(
            f"TensorRT crashed while building the engine: the build process died of {name}; its last messages: "
            f"{said}. reproduce.sh beside the plan repeats the build with trtexec", where=where,
        )
    if not result.is_file():
        raise RuntimeFailure(f"the build process exited with status {code} and no result; its last messages: {said}", where=where)
    outcome = pickle.loads(result.read_bytes())
    if "ok" in outcome:
        built: BuildOutput = outcome["ok"]
        return built
    if "error" in outcome:
        kind, message = outcome["error"]
        raise (RuntimeFailure if kind == "RuntimeFailure" else GeneratorError)(message)
    raise RuntimeError(f"the TensorRT build process failed (a trgen bug):\n{outcome['bug']}")
