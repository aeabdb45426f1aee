"""`reproduce.sh` beside each plan: the trtexec command that builds the same engine.

For bug reports and for people who would rather run NVIDIA's own tool. Generated from the BuildPlan,
so it says exactly what `apply_plan` asked TensorRT for.
"""

from __future__ import annotations

import shlex

from ..fileio import atomic_write_text
from .plan import BuildPlan, InputShapes

_FLAGS = {"FP16": "--fp16", "INT8": "--int8", "VERSION_COMPATIBLE": "--versionCompatible"}
_HARDWARE = {"AMPERE_PLUS": "ampere+", "SAME_COMPUTE_CAPABILITY": "sameComputeCapability"}


def trtexec_command(plan: BuildPlan) -> list[str]:
    """The trtexec arguments equivalent to `plan` (one --min/opt/maxShapes set per profile)."""
    cmd = ["trtexec", f"--onnx={plan.network_onnx}", f"--saveEngine={plan.plan_file}", "--skipInference"]
    if "STRONGLY_TYPED" in plan.network_flags:
        cmd.append("--stronglyTyped")
    cmd += [_FLAGS[flag] for flag in plan.builder_flags if flag in _FLAGS]
    for shapes in plan.profiles:
        for which in ("min", "opt", "max"):
            cmd.append(f"--{which}Shapes=" + ",".join(_shape(t, which) for t in shapes))
    for pool, size in plan.memory_pools:
        cmd.append(f"--memPoolSize={pool.lower()}:{size >> 20}M")
    if plan.optimization_level is not None:
        cmd.append(f"--builderOptimizationLevel={plan.optimization_level}")
    if plan.hardware_compatibility is not None:
        cmd.append(f"--hardwareCompatibilityLevel={_HARDWARE[plan.hardware_compatibility]}")
    if plan.calibrator != "none" and plan.calibration_cache is not None:
        cmd.append(f"--calib={plan.calibration_cache}")
    cmd.append(f"--timingCacheFile={plan.timing_cache}")
    cmd.append(f"--profilingVerbosity={plan.profiling_verbosity.lower()}")
    cmd.append(f"--exportLayerInfo={plan.plan_file}.trtexec-layers.json")
    return cmd


def reproduce_script(plan: BuildPlan) -> str:
    lines = [
        "#!/usr/bin/env bash",
        f"# Rebuild {plan.plan_file.name} of variant {plan.variant} with trtexec "
        f"(trgen built it with TensorRT {plan.tensorrt_version}).",
    ]
    if plan.fp16_from is not None:
        lines.append(f"# {plan.network_onnx.name} is the FP16 copy trgen made of {plan.fp16_from}.")
    if plan.calibrator == "tensorrt":
        lines.append("# trgen fed TensorRT's calibrator the calibration data; trtexec cannot, so --calib")
        lines.append("# reads the cache TensorRT wrote during that build.")
    lines.append("set -euo pipefail")
    lines.append(" \\\n    ".join(shlex.quote(arg) for arg in trtexec_command(plan)))
    return "\n".join(lines) + "\n"


def write_reproduce_script(plan: BuildPlan) -> None:
    path = plan.plan_file.with_name("reproduce.sh" if plan.plan_file.name == "model.plan" else plan.plan_file.stem + ".reproduce.sh")
    atomic_write_text(path, reproduce_script(plan))
    path.chmod(0o755)


def _shape(tensor: InputShapes, which: str) -> str:
    dims = getattr(tensor, which)
    return f"{tensor.name}:" + "x".join(str(d) for d in dims)
