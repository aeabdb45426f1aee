"""The folder around config.pbtxt: version folders, the model file, labels, warmup samples and files,
and, with auto-complete off (`--strict`), the fields Triton would otherwise read from the model file."""

from __future__ import annotations

from collections.abc import Iterator

from ..backends import AUTO_COMPLETES_IO, ENSEMBLE
from ..locator import Key
from ..problems import Finding, warning
from ..subject import ModelUnderCheck

_BINARY = {".plan", ".onnx", ".pt", ".xml", ".bin", ".graphdef"}  # a zero-byte file of these cannot load


def versions(m: ModelUnderCheck) -> Iterator[Finding]:
    """A numeric version folder (not starting with 0) holding the model file Triton loads."""
    present = m.version_folders()
    if not present:
        yield Finding(m.where(), f"at least one version must be available under the version policy of model "
                      f"'{m.name}': put the model in {m.folder}/1/ (numeric, not starting with 0)")
        return
    policy = m.config.version_policy
    for k, version in enumerate(policy.specific.versions):
        if version not in present:
            yield Finding(("version_policy", "specific", "versions", k), f"version {version} has no folder "
                          f"{m.folder}/{version}/")
    if not m.loaded_versions():
        yield Finding(("version_policy",), f"at least one version must be available under the version policy of "
                      f"model '{m.name}' (folders: {', '.join(map(str, present))})")
    filename = m.model_filename
    for version in m.loaded_versions():
        if filename:
            path = m.dir / str(version) / filename
            if not path.exists():
                yield Finding(m.where(), f"{m.folder}/{version}/{filename} is missing (the {m.kind} model file)")
            elif m.kind == "openvino" and path.suffix == ".xml" and not path.with_suffix(".bin").exists():
                yield warning(m.where(), f"{m.folder}/{version}/{path.with_suffix('.bin').name} is missing: OpenVINO "
                              f"reads the weights of {filename} from it")
            elif path.is_dir() and m.kind == "onnxruntime" and not (path / "model.onnx").is_file():
                yield Finding(m.where(), f"{m.folder}/{version}/{filename} is a folder without model.onnx in it")
            elif path.is_file() and path.suffix in _BINARY and path.stat().st_size == 0:
                yield Finding(m.where(), f"{m.folder}/{version}/{filename} is empty (0 bytes): the {m.kind} backend "
                              "cannot load it")
        for key in sorted(m.config.cc_model_filenames):
            name = m.config.cc_model_filenames[key]
            if not (m.dir / str(version) / name).exists():
                yield Finding(("cc_model_filenames", Key(key)), f"{m.folder}/{version}/{name} (compute capability "
                              f"{key}) is missing")


def complete_config(m: ModelUnderCheck) -> Iterator[Finding]:
    """--strict (auto-complete off): a config.pbtxt, and the inputs/outputs backends would read from the model."""
    if not m.strict or m.kind == ENSEMBLE:
        return
    if not m.has_config:
        yield Finding(("name",), f"missing config.pbtxt: with auto-complete disabled (--strict) {m.folder}/ needs one")
        return
    if m.kind in AUTO_COMPLETES_IO - {"python"}:
        for field in ("input", "output"):
            if not getattr(m.config, field):
                yield Finding(m.where(), f"no '{field}' declared: with auto-complete disabled (--strict) the "
                              f"{m.kind} backend does not read them from the model file")


def labels(m: ModelUnderCheck) -> Iterator[Finding]:
    """`label_filename` names a file in the model folder."""
    for i, io in enumerate(m.config.output):
        if io.label_filename and not (m.dir / io.label_filename).is_file():
            yield Finding(("output", i, "label_filename"), f"label file {m.folder}/{io.label_filename} does not exist")


def warmup(m: ModelUnderCheck) -> Iterator[Finding]:
    """Warmup batch_size 1 without batching, <= max_batch_size with it (0 is skipped: a warning);
    concrete dims; `input_data_file`s in <model>/warmup/."""
    for w, sample in enumerate(m.config.model_warmup):
        where = ("model_warmup", w)
        if sample.batch_size == 0:
            yield warning(where + ("batch_size",), f"warmup {sample.name!r} has batch_size 0: the model instance "
                          "skips it")
        elif not m.batching and sample.batch_size != 1:
            yield Finding(where + ("batch_size",), f"warmup {sample.name!r} batch_size must be 1 (max_batch_size is 0)")
        elif m.batching and sample.batch_size > m.config.max_batch_size:
            yield warning(where + ("batch_size",), f"warmup {sample.name!r} batch_size {sample.batch_size} exceeds "
                          f"max_batch_size {m.config.max_batch_size}: no request could be that large")
        for key in sorted(sample.inputs):
            value = sample.inputs[key]
            dims = list(value.dims)
            if any(d < 1 for d in dims):
                yield Finding(where + ("inputs", Key(key), "value", "dims"),
                              f"warmup {sample.name!r} input {key!r} needs concrete dims >= 1, got {dims}")
            if value.input_data_file and not (m.dir / "warmup" / value.input_data_file).is_file():
                yield Finding(where + ("inputs", Key(key)),
                              f"warmup file {m.folder}/warmup/{value.input_data_file} does not exist")


RULES = {
    "versions": versions,
    "complete-config": complete_config,
    "labels": labels,
    "warmup": warmup,
}
