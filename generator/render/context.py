"""The template context of one config.pbtxt: plain dicts and lists, target defaults filled in.

Everything the templates print is decided here (the templates only lay it out), so this is where
target-dependent choices live: the platform line, KIND_CPU vs KIND_GPU, python-backend parameters,
cuda graphs only for TensorRT, plan files per compute capability.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..artifacts import Artifact, cc_plan_name
from ..errors import GeneratorError
from ..spec import ResolvedVariant
from ..spec.triton import DynamicBatching, Optimization, TritonSettings, VersionPolicy, WarmupSample
from .tensors import attach_labels, config_tensors

PLATFORMS = {"python-onnxruntime": "python", "onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}
ARTIFACT_KIND = {"python-onnxruntime": "onnx", "onnxruntime": "onnx", "tensorrt": "plan"}
ONNX_FILE = "model.onnx"
PLAN_FILE = "model.plan"
LABELS_FILE = "labels.txt"
_CC = re.compile(r"^\d{1,2}\.\d{1,2}$")


def build_context(rv: ResolvedVariant, artifact: Artifact) -> dict[str, Any]:
    """The whole config of `rv` as data; GeneratorError when spec and artifact disagree."""
    expected = ARTIFACT_KIND[rv.target]
    if artifact.kind != expected:
        raise GeneratorError(
            f"target {rv.target} needs an artifact of kind {expected!r}, got {artifact.kind!r} "
            f"({artifact.model_file.name}): rebuild with `trgen build`",
            where=f"variant {rv.name}",
        )
    platform = PLATFORMS[rv.target]
    triton = rv.triton
    inputs, outputs = config_tensors(rv, artifact)
    if rv.model.labels is not None:
        attach_labels(outputs, count_labels(rv.model.labels), LABELS_FILE, where=str(rv.model.labels))
    return {
        "name": rv.name,
        "platform": platform,
        "max_batch_size": rv.model.max_batch_size,
        "inputs": inputs,
        "outputs": outputs,
        "version_policy": _version_policy(triton.version_policy),
        "instance_groups": _instance_groups(rv, triton, len(artifact.signature.profiles)),
        "dynamic_batching": _dynamic_batching(rv, triton.dynamic_batching, artifact.serving_defaults),
        "optimization": _optimization(platform, triton.optimization),
        "cc_model_filenames": sorted((cc, filename) for cc, filename, _ in cc_model_files(artifact)),
        "parameters": _parameters(platform, triton, artifact.serving_defaults),
        "warmup": [_warmup(rv, sample, inputs) for sample in triton.warmup or []],
        "response_cache": triton.response_cache,
    }


def count_labels(path: Path) -> int:
    """Labels files hold one label per line; blank trailing lines do not count."""
    try:
        return len(path.read_text(encoding="utf-8").rstrip("\n").split("\n"))
    except (OSError, UnicodeDecodeError) as exc:
        raise GeneratorError(f"cannot read the labels file ({exc.__class__.__name__})", where=path) from None


def cc_model_files(artifact: Artifact) -> list[tuple[str, str, Path]]:
    """(compute capability, file name in the version folder, source path) of per-GPU-arch plans."""
    out = []
    for cc, path in artifact.cc_model_files:
        if not _CC.match(cc):
            raise GeneratorError(f"compute capability {cc!r} must look like '8.0'", where=f"variant {artifact.variant}")
        out.append((cc, cc_plan_name(cc), path))
    return out


def _version_policy(policy: VersionPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    specific = sorted(set(policy.specific)) if policy.specific is not None else None
    return {"latest": policy.latest, "specific": specific, "all": bool(policy.all)}


def _instance_groups(rv: ResolvedVariant, triton: TritonSettings, n_profiles: int) -> list[dict[str, Any]]:
    """Default: one KIND_GPU instance for TensorRT, one KIND_CPU instance otherwise."""
    default = "KIND_GPU" if rv.target == "tensorrt" else "KIND_CPU"
    groups = triton.instance_groups or []
    if not groups:
        return [{"kind": default, "count": 1, "gpus": [], "profiles": []}]
    for group in groups:
        if group.profiles and rv.target != "tensorrt":
            raise GeneratorError("instance group 'profiles' apply to target tensorrt only", where=f"variant {rv.name}")
        bad = [p for p in group.profiles if not p.isdigit() or (n_profiles and int(p) >= n_profiles)]
        if bad:
            raise GeneratorError(
                f"instance group profiles {bad} are not profile indices of the engine (it has {n_profiles})",
                where=f"variant {rv.name}",
            )
        if group.kind == "KIND_CPU" and group.gpus:
            raise GeneratorError("a KIND_CPU instance group cannot list gpus", where=f"variant {rv.name}")
    return [{"kind": g.kind, "count": g.count, "gpus": list(g.gpus), "profiles": list(g.profiles)} for g in groups]


def _dynamic_batching(
    rv: ResolvedVariant, batching: DynamicBatching | None, measured: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """On by default for batching models (max_batch_size > 0): served INT8 is faster than FP32 only when
    requests are batched. `dynamic_batching: {enabled: false}` turns it off."""
    mbs = rv.model.max_batch_size
    if batching is None:
        batching = DynamicBatching() if mbs > 0 else None
    if batching is None or not batching.enabled:
        return None
    if not batching.preferred_batch_sizes and (measured or {}).get("preferred_batch_sizes"):
        # issue 12: unset in the spec, chosen by the build's local sweep (generator/measure/sweep.py)
        batching = batching.model_copy(update={"preferred_batch_sizes": list(measured["preferred_batch_sizes"])})  # type: ignore[index]
    if mbs == 0 or any(size > mbs for size in batching.preferred_batch_sizes):
        raise GeneratorError(
            f"dynamic batching needs max_batch_size > 0 and preferred batch sizes <= it (max_batch_size {mbs}, "
            f"preferred {batching.preferred_batch_sizes})",
            where=f"variant {rv.name}",
        )
    policy = batching.queue_policy
    return {
        "preferred_batch_sizes": sorted(set(batching.preferred_batch_sizes)),
        "max_queue_delay_us": batching.max_queue_delay_us,
        "preserve_ordering": batching.preserve_ordering,
        "queue_policy": None if policy is None else policy.model_dump(),
    }


def _optimization(platform: str, optimization: Optimization | None) -> dict[str, Any] | None:
    """cuda graphs are a TensorRT-backend feature: dropped for other platforms (settings inherit)."""
    if optimization is None:
        return None
    block = {
        "cuda_graphs": optimization.cuda_graphs and platform == "tensorrt_plan",
        "input_pinned_memory": optimization.input_pinned_memory,
        "output_pinned_memory": optimization.output_pinned_memory,
    }
    return block if any(v is not None and v is not False for v in block.values()) else None


def _parameters(platform: str, triton: TritonSettings, measured: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    values = {key: _string(value) for key, value in (triton.parameters or {}).items()}
    if platform == "python":
        values["onnx_file"] = ONNX_FILE
        values.setdefault("intra_op_threads", str((measured or {}).get("intra_op_threads", 1)))  # sweep: issue 12
        values.setdefault("inter_op_threads", "1")
    return sorted(values.items())


def _string(value: str | int | float | bool) -> str:
    """Parameters are strings in Triton; bools as true/false, floats in shortest round-trip form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _warmup(rv: ResolvedVariant, sample: WarmupSample, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    batching = rv.model.max_batch_size > 0
    if not batching and sample.batch_size != 1:
        raise GeneratorError(
            f"warmup {sample.name!r}: batch_size must be 1 when max_batch_size is 0", where=f"variant {rv.name}"
        )
    return {
        "name": sample.name,
        "batch_size": sample.batch_size,
        "count": sample.count,
        "data": "zero_data" if sample.data == "zero" else "random_data",
        "inputs": [
            {"name": t["name"], "data_type": t["data_type"], "dims": _warmup_dims(rv, t, batching)} for t in inputs
        ],
    }


def _warmup_dims(rv: ResolvedVariant, tensor: dict[str, Any], batching: bool) -> list[int]:
    """Warmup data needs concrete shapes: -1 dims take the first profile's opt shape from the spec."""
    dims = list(tensor["dims"])
    if -1 not in dims:
        return dims
    for profile in rv.model.profiles:
        if tensor["name"] in profile:
            opt = list(profile[tensor["name"]].opt)
            opt = opt[1:] if batching else opt
            if len(opt) == len(dims):
                return [o if d == -1 else d for d, o in zip(dims, opt)]
    raise GeneratorError(
        f"warmup needs a concrete shape for input {tensor['name']!r} (dims {dims}): fix the dims with "
        "models[].inputs or give a profile with an opt shape",
        where=f"variant {rv.name}",
    )
