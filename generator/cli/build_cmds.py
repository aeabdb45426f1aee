"""`trgen build` and `trgen verify`: deployable model files, and a local check of each against FP32."""

from __future__ import annotations

import argparse

from ..errors import EXIT_CHECK_FAILED, EXIT_OK
from .common import (
    Selection,
    add_command,
    add_force,
    add_selection,
    add_spec,
    open_spec,
    progress_enabled,
)


def register(sub: argparse._SubParsersAction) -> None:
    build = add_command(
        sub, "build",
        help="build each variant's model file (ONNX for onnxruntime targets, TensorRT plans)",
        description="fp32: the source ONNX; fp16: an FP16 copy; int8: the calibrated Q/DQ ONNX (calibrates "
        "first). target: tensorrt builds a plan with the installed TensorRT (10 or 11) and writes model.plan.json, "
        "reproduce.sh and a manifest beside it. Rebuilds only what changed.",
        examples=("trgen build examples/mnist/spec.yaml", "trgen build spec.yaml --variant mnist_trt_int8 --force"),
    )
    add_spec(build)
    add_selection(build)
    add_force(build)
    build.set_defaults(func=_build)

    verify = add_command(
        sub, "verify",
        help="run each built variant locally on the evaluation data and compare with onnxruntime FP32",
        description="Builds what is missing first. ONNX variants run in onnxruntime (CPU), TensorRT plans on "
        "the local GPU. Exit status 1 when a tolerance of the model's evaluation block is missed.",
        examples=("trgen verify examples/mnist/spec.yaml", "trgen verify spec.yaml --model mnist"),
    )
    add_spec(verify)
    add_selection(verify)
    verify.set_defaults(func=_verify)


def _build(args: argparse.Namespace) -> int:
    from ..pipeline import build_artifacts, speed_checks

    selection = open_spec(args, command="build")
    spec = selection.spec
    _tensorrt_first(selection)
    names = [rv.name for rv in selection.variants]
    artifacts = build_artifacts(spec, variants=names, force=args.force, progress=progress_enabled(args))
    for name, artifact in artifacts.items():
        print(f"{name}: {artifact.model_file} ({artifact.kind})")
        for cc, path in artifact.cc_model_files:
            print(f"  compute capability {cc}: {path}")
    checks = speed_checks(spec, artifacts, model=args.model)  # INT8 vs FP32 on this machine (issue 12), logged
    return EXIT_OK if all(c.passed for c in checks) else EXIT_CHECK_FAILED


def _verify(args: argparse.Namespace) -> int:
    from ..measure.compare import ComparisonReport
    from ..measure.verify import verify_variant
    from ..pipeline import build_artifacts

    selection = open_spec(args, command="verify")
    _tensorrt_first(selection)
    variants = selection.variants
    chosen = [rv for rv in variants if rv.model.evaluation is not None]
    skipped = [f"{rv.name}: model {rv.model.name!r} has no 'evaluation' block" for rv in variants if rv.model.evaluation is None]
    names = [rv.name for rv in chosen]
    artifacts = build_artifacts(selection.spec, variants=names, progress=progress_enabled(args)) if chosen else {}
    results = tuple(verify_variant(rv, artifacts[rv.name]) for rv in chosen)
    report = ComparisonReport(server="this machine", comparisons=results, skipped=tuple(skipped))
    print("Each variant on this machine against onnxruntime FP32 (the live comparison's statistics):")
    print("\n".join(report.summary().splitlines()[1:]))  # its first line speaks of INT8 only
    return EXIT_OK if report else EXIT_CHECK_FAILED


def _tensorrt_first(selection: Selection) -> None:
    """Fail before any work when a tensorrt variant is selected and TensorRT is missing."""
    from ..engine.tensorrt_env import load_tensorrt

    if any(rv.target == "tensorrt" for rv in selection.variants):
        load_tensorrt()
