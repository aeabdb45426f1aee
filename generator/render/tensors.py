"""config.pbtxt inputs/outputs: derived from the artifact's signature, spec overrides checked against it.

The artifact (ONNX file or TensorRT engine) is what Triton will load, so it is the authority: a spec
override may fix a dynamic (-1) dimension, but never change a name, a dtype, a rank or a fixed dim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..artifacts import Artifact
from ..errors import GeneratorError
from ..signature import Signature, TensorSig, triton_type
from ..spec import ResolvedVariant, TensorOverride


def config_tensors(rv: ResolvedVariant, artifact: Artifact) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(inputs, outputs) as template context: name, data_type (TYPE_*), dims without the batch dim."""
    sig = artifact.signature
    batching = rv.model.max_batch_size > 0
    if batching:
        _check_batch_dim(rv, artifact)
    exact_outputs = rv.target == "onnxruntime"  # the ORT backend compares output dims literally
    inputs = [_tensor(rv, artifact, t, _override(rv.model.inputs, t), "input", False) for t in sig.inputs]
    outputs = [_tensor(rv, artifact, t, _override(rv.model.outputs, t), "output", exact_outputs) for t in sig.outputs]
    _check_unknown(rv, "inputs", rv.model.inputs, sig.inputs)
    _check_unknown(rv, "outputs", rv.model.outputs, sig.outputs)
    return inputs, outputs


def max_profile_batch(sig: Signature) -> int | None:
    """The largest batch every optimisation profile accepts (smallest profile max of dim 0)."""
    maxima = [hi[0] for profile in sig.profiles for (_, _, hi) in profile.values() if hi]
    return min(maxima) if maxima else None


def _fail(rv: ResolvedVariant, field: str, message: str) -> GeneratorError:
    return GeneratorError(message, where=f"models[{rv.model.name}].{field} (variant {rv.name})")


def _check_batch_dim(rv: ResolvedVariant, artifact: Artifact) -> None:
    sig = artifact.signature
    for kind, tensor in [("input", t) for t in sig.inputs] + [("output", t) for t in sig.outputs]:
        if not tensor.shape or tensor.shape[0] != -1:
            raise _fail(
                rv,
                "max_batch_size",
                f"max_batch_size {rv.model.max_batch_size} needs a dynamic first dimension, but {kind} "
                f"{tensor.name!r} of {artifact.model_file.name} has shape {list(tensor.shape)}: export the "
                "model with a dynamic batch axis or set max_batch_size: 0",
            )
    limit = max_profile_batch(sig)
    if artifact.kind == "plan" and limit is not None and rv.model.max_batch_size > limit:
        raise _fail(
            rv,
            "max_batch_size",
            f"max_batch_size {rv.model.max_batch_size} exceeds the engine's smallest profile max batch {limit}: "
            "lower max_batch_size or rebuild with a larger profile max",
        )


def _override(overrides: Sequence[TensorOverride], tensor: TensorSig) -> TensorOverride | None:
    return next((o for o in overrides if o.name == tensor.name), None)


def _check_unknown(
    rv: ResolvedVariant, field: str, overrides: Sequence[TensorOverride], tensors: Sequence[TensorSig]
) -> None:
    names = [t.name for t in tensors]
    for o in overrides:
        if o.name not in names:
            message = f"the model has no {field[:-1]} {o.name!r} (it has: {', '.join(names)})"
            raise _fail(rv, f"{field}[{o.name}]", message)


def _tensor(
    rv: ResolvedVariant, artifact: Artifact, tensor: TensorSig, override: TensorOverride | None, kind: str, exact: bool
) -> dict[str, Any]:
    dims = list(tensor.shape[1:] if rv.model.max_batch_size > 0 else tensor.shape)
    dtype = tensor.dtype
    field = f"{kind}s[{tensor.name}]"
    model = f"{artifact.model_file.name} has"
    if override is not None and override.dtype is not None and override.dtype != dtype:
        raise _fail(rv, field + ".dtype", f"dtype {override.dtype} does not match the model: {model} {dtype}")
    if override is not None and override.dims is not None:
        dims = _merge_dims(rv, field + ".dims", dims, list(override.dims), exact, model)
    return {"name": tensor.name, "data_type": triton_type(dtype), "dims": dims, "label_filename": None}


def _merge_dims(
    rv: ResolvedVariant, field: str, model_dims: list[int], wanted: list[int], exact: bool, model: str
) -> list[int]:
    """Spec dims (without batch) over model dims: same rank, fixed dims kept, -1 may be fixed."""
    if len(wanted) != len(model_dims):
        message = f"{wanted} has rank {len(wanted)} but {model} {model_dims} (without the batch dimension)"
        raise _fail(rv, field, message)
    for i, (have, want) in enumerate(zip(model_dims, wanted)):
        if want < 1 and want != -1:
            raise _fail(rv, field, f"dim {i} is {want}: dims must be >= 1, or -1 for dynamic")
        if have != -1 and want != have:
            raise _fail(rv, field, f"dim {i} is {want} but {model} a fixed {have} there ({model_dims})")
        if exact and want != have:
            message = f"{wanted}: the onnxruntime backend needs output dims exactly as in the model, {model_dims}"
            raise _fail(rv, field, message)
    return wanted


def attach_labels(outputs: list[dict[str, Any]], n_labels: int, filename: str, where: str) -> None:
    """Set `label_filename` on the classification output: the one whose last dim is the label count."""
    matches = [o for o in outputs if o["dims"] and o["dims"][-1] == n_labels]
    if not matches and len(outputs) == 1 and (not outputs[0]["dims"] or outputs[0]["dims"][-1] == -1):
        matches = outputs  # one output of unknown width: it is the classifier
    if len(matches) != 1:
        shapes = ", ".join(f"{o['name']} {o['dims']}" for o in outputs)
        raise GeneratorError(
            f"the labels file has {n_labels} labels, but {len(matches)} outputs have {n_labels} classes in their "
            f"last dimension ({shapes}): fix the labels file or the model",
            where=where,
        )
    matches[0]["label_filename"] = filename
