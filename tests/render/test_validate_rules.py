"""One row per validation rule: the rule flags the bad config at the marked line (`#!`) and the good
config of the same row passes with zero problems. Model files are real where a rule reads them: tiny
ONNX models and engine-signature sidecars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from generator.render import engine_signature_json, validate_repository
from generator.render.validate import RULES
from generator.signature import Signature, TensorSig
from tests.render.conftest import identity_onnx

FileMaker = Callable[[Path], None]
Files = dict[str, str | FileMaker]


def onnx(shape: list[object], elem_type: int = 1) -> FileMaker:
    def make(path: Path) -> None:
        identity_onnx(path, shape, elem_type=elem_type)
    return make


def sidecar(profile_max: int = 8, dtype: str = "fp32") -> str:
    sig = Signature(
        inputs=(TensorSig("x", dtype, (-1, 3)),),
        outputs=(TensorSig("y", dtype, (-1, 3)),),
        profiles=({"x": ((1, 3), (4, 3), (profile_max, 3))},),
    )
    return engine_signature_json(sig)


IO = """input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]
"""
PY = 'name: "m"\nbackend: "python"\nmax_batch_size: 8\n' + IO + "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
ORT = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n' + IO
TRT = 'name: "m"\nplatform: "tensorrt_plan"\nmax_batch_size: 8\n' + IO + "instance_group [ { kind: KIND_GPU count: 1 } ]\n"
ENS = """name: "m"
platform: "ensemble"
max_batch_size: 8
""" + IO + """ensemble_scheduling {
  step [
    {
      model_name: "inner"
      model_version: -1
      input_map { key: "x" value: "x" }
      output_map { key: "y" value: "y" }
    }
  ]
}
"""
ONNX_FILE = 'parameters { key: "onnx_file" value { string_value: "model.onnx" } }\n'
INNER = PY.replace('name: "m"', 'name: "inner"')
BASES: dict[str, tuple[str, Files]] = {
    "py": (PY, {"1/model.py": ""}),
    "ort": (ORT, {"1/model.onnx": onnx(["batch", 3])}),
    "trt": (TRT, {"1/model.plan": "engine", "1/model.plan.json": sidecar()}),
    "ens": (ENS, {"1/.keep": ""}),
}


@dataclass
class Case:
    rule: str
    fragment: str
    bad: str  # the offending line ends with "#!"
    good: str
    files: Files
    bad_files: Files
    extra: dict[str, tuple[str, Files]] = field(default_factory=dict)


def case(rule: str, fragment: str, edit: Callable[[str], str], *, base: str = "py", good: Callable[[str], str] | None = None,
         files: Files | None = None, bad_files: Files | None = None) -> Case:
    text, base_files = BASES[base]
    good_files = {**base_files, **(files or {})}
    inner: Files = {"1/model.py": ""}
    extra = {"inner": (INNER, inner)} if base == "ens" else {}
    return Case(rule, fragment, edit(text), (good or (lambda t: t))(text), good_files,
                bad_files if bad_files is not None else good_files, extra)


def sub(old: str, new: str, mark: bool = True) -> Callable[[str], str]:
    """Replace `old` by `new` (it must occur); mark the line where it starts as the expected location."""
    def edit(text: str) -> str:
        start = text.index(old)
        text = text[:start] + new + text[start + len(old):]
        end = text.index("\n", start)
        return text[:end] + "  #!" + text[end:] if mark else text
    return edit


def add(line: str) -> Callable[[str], str]:
    return lambda text: text + line + "  #!\n"


CASES = [
    case("platform", "set 'platform' or 'backend'", lambda t: sub('name: "m"', 'name: "m"')(t).replace('backend: "python"\n', "")),
    case("platform", "does not match platform", sub('platform: "onnxruntime_onnx"', 'platform: "onnxruntime_onnx" backend: "tensorrt"'),
         base="ort", good=sub('platform: "onnxruntime_onnx"', 'platform: "onnxruntime_onnx" backend: "onnxruntime"', mark=False)),
    case("name", "must equal the folder name", sub('name: "m"', 'name: "model"')),
    case("max-batch-size", "must be >= 0", sub("max_batch_size: 8", "max_batch_size: -1")),
    case("io-fields", "must specify 'data_type'", sub('name: "x" data_type: TYPE_FP32', 'name: "x"')),
    case("io-fields", "must specify 'dims'", sub('name: "y" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "y" data_type: TYPE_FP32')),
    case("io-fields", "input 0 must specify 'name'", sub('input [ { name: "x" data_type', 'input [ { data_type')),
    case("io-fields", "used twice", add('input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]')),
    case("dims", "dims must be >= 1 or -1", sub('name: "x" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "x" data_type: TYPE_FP32 dims: [ 0 ]'),
         good=sub('name: "x" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "x" data_type: TYPE_FP32 dims: [ -1 ]', mark=False)),
    case("reshape", "does not keep the element count",
         sub("dims: [ 3 ] } ]\noutput", "dims: [ 3 ] reshape { shape: [ 2, 2 ] } } ]\noutput"),
         good=sub("dims: [ 3 ] } ]\noutput", "dims: [ 3 ] reshape { shape: [ 3, 1 ] } } ]\noutput", mark=False)),
    case("reshape", "empty reshape needs max_batch_size > 0",
         lambda t: sub("dims: [ 3 ] } ]\noutput", "dims: [ 1 ] reshape { shape: [ ] } } ]\noutput")(t).replace("max_batch_size: 8", "max_batch_size: 0"),
         good=sub("dims: [ 3 ] } ]\noutput", "dims: [ 1 ] reshape { shape: [ ] } } ]\noutput", mark=False)),
    case("dynamic-batching", "must be > 0 and <= max_batch_size", add("dynamic_batching { preferred_batch_size: [ 4, 16 ] }"),
         good=add("dynamic_batching { preferred_batch_size: [ 4, 8 ] }")),
    case("dynamic-batching", "DELAY cannot be used with preserve_ordering",
         add("dynamic_batching { preserve_ordering: true default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 10 } }"),
         good=add("dynamic_batching { preserve_ordering: true default_queue_policy { timeout_action: REJECT default_timeout_microseconds: 10 } }")),
    case("one-scheduler", "another member of oneof", lambda t: t + "dynamic_batching { }\nsequence_batching { }  #!\n",
         good=add("sequence_batching { }")),
    case("scheduler", "needs platform: \"ensemble\"", add('ensemble_scheduling { step [ { model_name: "m" } ] }')),
    case("scheduler", "needs an 'ensemble_scheduling'", lambda t: sub('platform: "ensemble"', 'platform: "ensemble"')(t).split("ensemble_scheduling")[0],
         base="ens"),
    case("tensorrt-only", "is_shape_tensor is only", sub('name: "x" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "x" data_type: TYPE_FP32 dims: [ 3 ] is_shape_tensor: true')),
    case("tensorrt-only", "'profile' is only", sub("kind: KIND_CPU count: 1", 'kind: KIND_CPU count: 1 profile: [ "0" ]')),
    case("tensorrt-only", "cuda graphs", add("optimization { cuda { graphs: true } }")),
    case("instance-groups", "KIND_CPU instance group cannot list 'gpus'", sub("kind: KIND_CPU count: 1", "kind: KIND_CPU count: 1 gpus: [ 0 ]"),
         good=sub("kind: KIND_CPU count: 1", "kind: KIND_GPU count: 1 gpus: [ 0 ]", mark=False)),
    case("instance-groups", "must be a non-negative integer", sub("kind: KIND_GPU count: 1", 'kind: KIND_GPU count: 1 profile: [ "first" ]'),
         base="trt"),
    case("warmup", "batch_size must be 1", lambda t: add('model_warmup { name: "w" batch_size: 2 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } }')(t).replace("max_batch_size: 8", "max_batch_size: 0"),
         good=add('model_warmup { name: "w" batch_size: 2 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } }')),
    case("warmup", "needs concrete dims", add('model_warmup { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ -1 ] zero_data: true } } }')),
    case("warmup-files", "warmup/x.bin does not exist",
         add('model_warmup { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 3 ] input_data_file: "x.bin" } } }'),
         good=add('model_warmup { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 3 ] input_data_file: "x.bin" } } }'),
         files={"warmup/x.bin": "\0" * 12}, bad_files=BASES["py"][1]),
    case("ensemble", "takes no 'instance_group'", add("instance_group [ { kind: KIND_CPU } ]"), base="ens"),
    case("ensemble", "ensemble input 'z' is not used", lambda t: t.replace("input [", 'input [ { name: "z" data_type: TYPE_FP32 dims: [ 1 ] },  #!\n', 1),
         base="ens"),
    case("ensemble", "ensemble output 'y' is never written", lambda t: sub('output [ { name: "y"', 'output [ { name: "y"')(t).replace('value: "y"', 'value: "t"'),
         base="ens"),
    case("ensemble", "must specify 'output_map'", lambda t: t.replace("    {\n", "    {  #!\n").replace('      output_map { key: "y" value: "y" }\n', ""),
         base="ens"),
    case("ensemble-steps", "'missing', which is not in the repository", sub('model_name: "inner"', 'model_name: "missing"'), base="ens"),
    case("versions", "no version folder", sub('backend: "python"', 'backend: "python"'), bad_files={"01/model.py": ""}),
    case("versions", "m/1/model.py is missing", sub('backend: "python"', 'backend: "python"'), bad_files={"1/model.onnx": ""}),
    case("versions", "version 2 has no folder", add("version_policy { specific { versions: [ 1, 2 ] } }"),
         good=add("version_policy { specific { versions: [ 1 ] } }")),
    case("versions", "m/1/model.plan is missing", sub('platform: "tensorrt_plan"', 'platform: "tensorrt_plan"'), base="trt",
         bad_files={"1/model.plan.json": sidecar()}),
    case("versions", "model_sm90.plan (compute capability 9.0) is missing", add('cc_model_filenames { key: "9.0" value: "model_sm90.plan" }'),
         base="trt", good=add('cc_model_filenames { key: "8.0" value: "model_sm80.plan" }'), files={"1/model_sm80.plan": ""}),
    case("labels", "label file m/labels.txt does not exist", sub('dims: [ 3 ] } ]\ninstance', 'dims: [ 3 ] label_filename: "labels.txt" } ]\ninstance'),
         good=sub('dims: [ 3 ] } ]\ninstance', 'dims: [ 3 ] label_filename: "labels.txt" } ]\ninstance', mark=False),
         files={"labels.txt": "a\nb\nc\n"}, bad_files=BASES["py"][1]),
    case("onnx-model", "must equal the ONNX output shape", sub('output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]', 'output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]'),
         base="ort", files={"1/model.onnx": onnx(["batch", "n"])},
         good=lambda t: t.replace("dims: [ 3 ]", "dims: [ -1 ]")),
    case("onnx-model", "fixes it to 3", sub('input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]', 'input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]'), base="ort"),
    case("onnx-model", "needs a dynamic first dimension", sub("max_batch_size: 8", "max_batch_size: 8"), base="ort",
         bad_files={"1/model.onnx": onnx([1, 3])}),
    case("onnx-model", "input 'x' is TYPE_FP32 but 1/model.onnx has TYPE_INT32", sub('input [ { name: "x"', 'input [ { name: "x"'), base="ort",
         bad_files={"1/model.onnx": onnx(["batch", 3], elem_type=6)}),
    case("onnx-model", "input 'z' is not in 1/model.onnx", lambda t: t.replace('name: "x"', 'name: "z"  #!\n'), base="ort"),
    case("onnx-model", "exclude the batch dimension", lambda t: t.replace("dims: [ 3 ] } ]\noutput", "dims: [ -1, 3 ] } ]  #!\noutput") + ONNX_FILE,
         files={"1/model.onnx": onnx(["batch", 3])},
         good=lambda t: t + ONNX_FILE),
    case("engine", "smallest profile max batch is 4", sub("max_batch_size: 8", "max_batch_size: 8"), base="trt",
         bad_files={"1/model.plan": "", "1/model.plan.json": sidecar(profile_max=4)}),
    case("engine", "output 'y' is TYPE_FP32 but 1/model.plan has TYPE_FP16", sub('output [ { name: "y"', 'output [ { name: "y"'), base="trt",
         bad_files={"1/model.plan": "", "1/model.plan.json": sidecar(dtype="fp16")}),
    case("engine", "unreadable engine signature", sub('platform: "tensorrt_plan"', 'platform: "tensorrt_plan"'), base="trt",
         bad_files={"1/model.plan": "", "1/model.plan.json": "{}"}),
]


def write_model(folder: Path, text: str, files: Files) -> None:
    folder.mkdir(parents=True)
    (folder / "config.pbtxt").write_text(text)
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            content(path)


def make_repo(root: Path, text: str, files: Files, extra: dict[str, tuple[str, Files]]) -> Path:
    write_model(root / "m", text, files)
    for name, (extra_text, extra_files) in extra.items():
        write_model(root / name, extra_text, extra_files)
    return root


@pytest.mark.parametrize("row", CASES, ids=[f"{c.rule}-{i}" for i, c in enumerate(CASES)])
def test_rule_catches_bad_and_passes_good(row: Case, tmp_path: Path) -> None:
    good = make_repo(tmp_path / "good", row.good, row.files, row.extra)
    assert [str(p) for p in validate_repository(good)] == []
    bad = make_repo(tmp_path / "bad", row.bad, row.bad_files, row.extra)
    problems = validate_repository(bad)
    hits = [p for p in problems if row.fragment in p.message]
    assert hits, f"expected {row.fragment!r} in {[str(p) for p in problems]}"
    marked = [n for n, line in enumerate(row.bad.split("\n"), 1) if line.endswith("#!")]
    assert [p.line for p in hits] == marked[:1] * len(hits), [str(p) for p in problems]
    assert hits[0].file == str(bad / "m" / "config.pbtxt")
    assert str(hits[0]) == f"{hits[0].file}:{hits[0].line}: {hits[0].message}"


def test_every_rule_has_a_row() -> None:
    assert set(RULES) <= {c.rule for c in CASES}


def test_tensorrt_only_fields_are_fine_on_tensorrt(tmp_path: Path) -> None:
    text, files = BASES["trt"]
    text = text.replace("count: 1", 'count: 1 profile: [ "0" ]') + "optimization { cuda { graphs: true } }\n"
    text = text.replace('name: "x" data_type: TYPE_FP32', 'name: "x" data_type: TYPE_FP32 is_shape_tensor: false')
    assert validate_repository(make_repo(tmp_path, text, files, {})) == []
