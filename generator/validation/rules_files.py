"""Rules that look beyond config.pbtxt: version folders, model files, labels, warmup data, other
models of the repository, and the model file's own signature (ONNX file, or the engine's sidecar)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

from ..errors import GeneratorError
from ..signature import Signature, read_onnx_signature
from .locator import Key
from .match import match_signature
from .problems import Finding
from ..signature import engine_signature_from_json, sidecar_path
from .subject import ModelUnderCheck


def versions(m: ModelUnderCheck) -> Iterator[Finding]:
    """A numeric version folder (not starting with 0) holding the model file Triton loads."""
    present = m.version_folders()
    if not present:
        yield Finding(m.where(), f"no version folder: put the model in {m.folder}/1/ (numeric, not starting with 0)")
        return
    policy = m.config.version_policy
    for k, version in enumerate(policy.specific.versions):
        if version not in present:
            message = f"version {version} has no folder {m.folder}/{version}/"
            yield Finding(("version_policy", "specific", "versions", k), message)
    filename = m.model_filename
    for version in m.loaded_versions():
        if filename and not (m.dir / str(version) / filename).exists():
            yield Finding(m.where(), f"{m.folder}/{version}/{filename} is missing (the {m.kind} model file)")
        for key in sorted(m.config.cc_model_filenames):
            name = m.config.cc_model_filenames[key]
            if not (m.dir / str(version) / name).exists():
                message = f"{m.folder}/{version}/{name} (compute capability {key}) is missing"
                yield Finding(("cc_model_filenames", Key(key)), message)


def labels(m: ModelUnderCheck) -> Iterator[Finding]:
    """`label_filename` names a file in the model folder."""
    for i, io in enumerate(m.config.output):
        if io.label_filename and not (m.dir / io.label_filename).is_file():
            yield Finding(("output", i, "label_filename"), f"label file {m.folder}/{io.label_filename} does not exist")


def warmup_files(m: ModelUnderCheck) -> Iterator[Finding]:
    """Warmup `input_data_file`s live in <model>/warmup/."""
    for w, sample in enumerate(m.config.model_warmup):
        for key in sorted(sample.inputs):
            data_file = sample.inputs[key].input_data_file
            if data_file and not (m.dir / "warmup" / data_file).is_file():
                yield Finding(
                    ("model_warmup", w, "inputs", Key(key)), f"warmup file {m.folder}/warmup/{data_file} does not exist"
                )


def ensemble_steps(m: ModelUnderCheck) -> Iterator[Finding]:
    """Every ensemble step names a model of this repository."""
    for s, step in enumerate(m.config.ensemble_scheduling.step):
        if step.model_name and step.model_name not in m.repo_models:
            message = f"step {s} runs {step.model_name!r}, which is not in the repository"
            yield Finding(("ensemble_scheduling", "step", s, "model_name"), message)


def onnx_model(m: ModelUnderCheck) -> Iterator[Finding]:
    """onnxruntime backend (and trgen's python backend via parameter onnx_file): config I/O as in the
    ONNX file; the onnxruntime backend also needs output dims exactly as in the model."""
    if m.kind == "onnxruntime":
        filename, exact = m.model_filename or "model.onnx", True
    elif m.kind == "python" and "onnx_file" in m.config.parameters:
        filename, exact = m.config.parameters["onnx_file"].string_value, False
    else:
        return
    if not (m.config.input or m.config.output):
        return  # Triton auto-completes inputs and outputs from the model
    for version in m.loaded_versions():
        path = m.dir / str(version) / filename
        if m.kind == "python" and not path.is_file():
            message = f"{m.folder}/{version}/{filename} (parameter onnx_file) is missing"
            yield Finding(("parameters", Key("onnx_file")), message)
        if path.is_file():
            yield from _against(m, path, read_onnx_signature, exact)


def engine(m: ModelUnderCheck) -> Iterator[Finding]:
    """TensorRT: config I/O and max_batch_size against the engine's sidecar `model.plan.json`, if any."""
    if m.kind != "tensorrt":
        return
    engine_signature_from_json, sidecar_path = _sidecar_api()
    for version in m.loaded_versions():
        plan = m.dir / str(version) / (m.model_filename or "model.plan")
        sidecar = sidecar_path(plan)
        if not sidecar.is_file():
            continue  # without TensorRT the engine itself cannot be opened: nothing to check against
        sig = yield from _against(m, sidecar, engine_signature_from_json, exact=False, source=f"{version}/{plan.name}")
        limit = max_profile_batch(sig) if sig is not None else None
        if limit is not None and m.config.max_batch_size > limit:
            yield Finding(
                ("max_batch_size",),
                f"max_batch_size {m.config.max_batch_size} exceeds what {version}/{plan.name} supports: its smallest "
                f"profile max batch is {limit}",
            )


def _sidecar_api() -> tuple[Callable[[Path], Signature], Callable[[Path], Path]]:
    """The sidecar reader, wherever this checkout keeps it (moving into generator.signature)."""
    try:
        from ..signature import engine_signature_from_json, sidecar_path
    except ImportError:  # older layout
        from ..render.sidecar import engine_signature_from_json, sidecar_path  # type: ignore[no-redef]
    return engine_signature_from_json, sidecar_path


def max_profile_batch(sig: Signature) -> int | None:
    """The largest batch every optimisation profile accepts (smallest profile max of dim 0)."""
    maxima = [hi[0] for profile in sig.profiles for (_, _, hi) in profile.values() if hi]
    return min(maxima) if maxima else None


def _against(
    m: ModelUnderCheck, path: Path, read: Callable[[Path], Signature], exact: bool, source: str | None = None
) -> Generator[Finding, None, Signature | None]:
    """Read a signature with `read`, yield where the config disagrees with it, return it."""
    label = source or f"{path.parent.name}/{path.name}"
    try:
        sig = read(path)
    except GeneratorError as exc:
        yield Finding(m.where(), f"{label}: {exc.message}")
        return None
    yield from match_signature(m.config, sig, label, exact_outputs=exact)
    return sig


RULES = {
    "versions": versions,
    "labels": labels,
    "warmup-files": warmup_files,
    "ensemble-steps": ensemble_steps,
    "onnx-model": onnx_model,
    "engine": engine,
}
