"""`trgen build` and `trgen verify`: deployable model files, and a local check of each against FP32."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..errors import EXIT_CHECK_FAILED, EXIT_OK

if TYPE_CHECKING:
    from ..spec import Spec


def register(sub: argparse._SubParsersAction) -> None:
    build = sub.add_parser(
        "build",
        help="build each variant's model file (ONNX for onnxruntime targets, TensorRT plans)",
        description="fp32: the source ONNX; fp16: an FP16 copy; int8: the calibrated Q/DQ ONNX (calibrates "
        "first). target: tensorrt builds a plan with the installed TensorRT (10 or 11) and writes model.plan.json, "
        "reproduce.sh and a manifest beside it. Rebuilds only what changed.",
    )
    build.add_argument("spec", help="path to the YAML spec")
    build.add_argument("--model", metavar="NAME", help="only this model's variants")
    build.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    build.set_defaults(func=_build)

    verify = sub.add_parser(
        "verify",
        help="run each built variant locally on the evaluation data and compare with onnxruntime FP32",
        description="Builds what is missing first. ONNX variants run in onnxruntime (CPU), TensorRT plans on "
        "the local GPU. Exit status 1 when a tolerance of the model's evaluation block is missed.",
    )
    verify.add_argument("spec", help="path to the YAML spec")
    verify.add_argument("--model", metavar="NAME", help="only this model's variants")
    verify.set_defaults(func=_verify)


def _build(args: argparse.Namespace) -> int:
    from ..pipeline import build_artifacts, speed_checks
    from ..spec import load_spec

    spec = load_spec(args.spec)
    _tensorrt_first(spec, args.model)
    artifacts = build_artifacts(spec, model=args.model, force=args.force)
    for name, artifact in artifacts.items():
        print(f"{name}: {artifact.model_file} ({artifact.kind})")
        for cc, path in artifact.cc_model_files:
            print(f"  compute capability {cc}: {path}")
    checks = speed_checks(spec, artifacts, model=args.model)  # INT8 vs FP32 on this machine (issue 12), logged
    return EXIT_OK if all(c.passed for c in checks) else EXIT_CHECK_FAILED


def _verify(args: argparse.Namespace) -> int:
    from ..measure.verify import verify_variant
    from ..measure.compare import ComparisonReport
    from ..pipeline import build_artifacts, select
    from ..spec import load_spec

    spec = load_spec(args.spec)
    _tensorrt_first(spec, args.model)
    variants = select(spec, args.model)
    chosen = [rv for rv in variants if rv.model.evaluation is not None]
    skipped = [f"{rv.name}: model {rv.model.name!r} has no 'evaluation' block" for rv in variants if rv.model.evaluation is None]
    artifacts = build_artifacts(spec, model=args.model) if chosen else {}
    results = tuple(verify_variant(rv, artifacts[rv.name]) for rv in chosen)
    report = ComparisonReport(server="this machine", comparisons=results, skipped=tuple(skipped))
    print("Each variant on this machine against onnxruntime FP32 (the live comparison's statistics):")
    print("\n".join(report.summary().splitlines()[1:]))  # its first line speaks of INT8 only
    return EXIT_OK if report else EXIT_CHECK_FAILED


def _tensorrt_first(spec: "Spec", model: str | None) -> None:
    """Fail before any work when a tensorrt variant is selected and TensorRT is missing."""
    from ..engine.tensorrt_env import load_tensorrt
    from ..pipeline import select

    if any(rv.target == "tensorrt" for rv in select(spec, model)):
        load_tensorrt()
