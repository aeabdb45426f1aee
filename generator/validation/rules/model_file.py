"""The config against the model file, where trgen can read it: ONNX files, and TensorRT engines through
their `model.plan.json` sidecar. Runs in both modes (auto-complete only fills what is missing; what is
declared must still agree with the model)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

from ..locator import Key
from ..locator import Path as LocatorPath
from ..match import match_signature
from ..model_io import FileSignature, UnreadableModel, read_engine_sidecar, read_onnx
from ..problems import Finding
from ..subject import ModelUnderCheck

SIDECAR_SUFFIX = ".json"  # model.plan -> model.plan.json


def onnx_model(m: ModelUnderCheck) -> Iterator[Finding]:
    """onnxruntime backend (and trgen's python backend via parameter onnx_file): config I/O as in the
    ONNX file; the onnxruntime backend also needs output dims exactly as in the model."""
    if m.kind == "onnxruntime":
        filename, exact = m.model_filename or "model.onnx", True
    elif m.kind == "python" and "onnx_file" in m.config.parameters:
        filename, exact = m.config.parameters["onnx_file"].string_value, False
    else:
        return
    for version in m.loaded_versions():
        path = m.dir / str(version) / filename
        if path.is_dir():
            path = path / "model.onnx"  # a large model is a folder holding model.onnx and its weights
        if m.kind == "python" and not path.is_file():
            message = f"{m.folder}/{version}/{filename} (parameter onnx_file) is missing"
            yield Finding(("parameters", Key("onnx_file")), message)
            continue
        if path.is_file() and path.stat().st_size > 0:  # missing / empty: reported by the versions rule
            where = ("parameters", Key("onnx_file")) if m.kind == "python" else m.where()
            yield from _against(m, path, read_onnx, exact, f"{version}/{filename}", where)


def engine(m: ModelUnderCheck) -> Iterator[Finding]:
    """TensorRT: config I/O and max_batch_size against the engine's sidecar `model.plan.json`, if any."""
    if m.kind != "tensorrt":
        return
    for version in m.loaded_versions():
        plan = m.dir / str(version) / (m.model_filename or "model.plan")
        sidecar = plan.with_name(plan.name + SIDECAR_SUFFIX)
        if not sidecar.is_file():
            continue  # without TensorRT the engine itself cannot be opened: nothing to check against
        label = f"{version}/{plan.name}"
        sig = yield from _against(m, sidecar, read_engine_sidecar, False, label, m.where())
        limit = sig.max_profile_batch() if sig is not None else None
        if limit is not None and m.config.max_batch_size > limit:
            yield Finding(("max_batch_size",), f"configuration specified max-batch {m.config.max_batch_size} but "
                          f"TensorRT engine {label} only supports max-batch {limit} (its smallest profile max batch)")


def _against(
    m: ModelUnderCheck, path: Path, read: Callable[[Path], FileSignature], exact: bool, label: str,
    where: LocatorPath,
) -> Generator[Finding, None, FileSignature | None]:
    """Read a signature with `read`, yield where the config disagrees with it, return it."""
    try:
        sig = read(path)
    except UnreadableModel as exc:
        sidecar = path.name.endswith(SIDECAR_SUFFIX)
        what, fix = ("engine signature", "rebuild the engine with `trgen build`") if sidecar else ("ONNX model", "re-export it")
        yield Finding(where, f"{m.folder}/{path.parent.name}/{path.name}: unreadable {what} ({exc}): {fix}")
        return None
    if m.config.input or m.config.output:  # nothing declared: auto-complete fills it from the model
        yield from match_signature(m.config, sig, label, exact_outputs=exact, batching=_batching(m, sig))
    return sig


def _batching(m: ModelUnderCheck, sig: FileSignature) -> bool:
    """max_batch_size > 0, or unset where the onnxruntime / TensorRT auto-complete turns batching on: every
    model tensor has a dynamic first dim and every declared one leaves it out (Triton then uses its
    default max batch size)."""
    if m.config.max_batch_size > 0:
        return True
    if m.strict or m.kind not in ("onnxruntime", "tensorrt"):
        return False
    tensors = {t.name: t.shape for t in sig.inputs + sig.outputs}
    if not tensors or any(not shape or shape[0] != -1 for shape in tensors.values()):
        return False
    declared = list(m.config.input) + list(m.config.output)
    ranks = {io.name: len(io.reshape.shape if io.HasField("reshape") else io.dims) for io in declared}
    return all(name in tensors and rank == len(tensors[name]) - 1 for name, rank in ranks.items())


RULES = {
    "onnx-model": onnx_model,
    "engine": engine,
}
