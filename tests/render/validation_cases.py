"""The table-driven harness of the validation tests: one `Case` per rule, a bad repository flagged at
the marked line (`#!`) and a good one of the same row that passes with zero problems. Model files
are real where a rule reads them: tiny ONNX models and engine-signature sidecars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from generator.signature import Signature, TensorSig, engine_signature_json
from generator.validation import validate_repository
from tests.render.conftest import identity_onnx

FileMaker = Callable[[Path], None]
Files = dict[str, str | FileMaker]
Extra = dict[str, tuple[str, Files]]


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
    extra: Extra = field(default_factory=dict)
    severity: str = "error"
    strict: bool = False  # run both repositories with --strict (auto-complete off)
    good_extra: Extra | None = None  # other models of the good repository, when they differ from `extra`


def case(rule: str, fragment: str, edit: Callable[[str], str], *, base: str = "py", good: Callable[[str], str] | None = None,
         files: Files | None = None, bad_files: Files | None = None, extra: Extra | None = None,
         severity: str = "error", strict: bool = False, good_extra: Extra | None = None) -> Case:
    text, base_files = BASES[base]
    good_files = {**base_files, **(files or {})}
    inner: Files = {"1/model.py": ""}
    default_extra = {"inner": (INNER, inner)} if base == "ens" else {}
    return Case(rule, fragment, edit(text), (good or (lambda t: t))(text), good_files,
                bad_files if bad_files is not None else good_files, extra if extra is not None else default_extra,
                severity, strict, good_extra)


def sub(old: str, new: str, mark: bool = True) -> Callable[[str], str]:
    """Replace `old` by `new` (it must occur); mark the line where it starts as the expected location."""
    def edit(text: str) -> str:
        start = text.index(old)
        text = text[:start] + new + text[start + len(old):]
        end = text.index("\n", start)
        return text[:end] + "  #!" + text[end:] if mark else text
    return edit


def mark(old: str) -> Callable[[str], str]:
    """Change nothing but mark the line of `old` (the problem is in the files, not the config)."""
    return sub(old, old)


def add(line: str) -> Callable[[str], str]:
    return lambda text: text + line + "  #!\n"


def write_model(folder: Path, text: str | None, files: Files) -> None:
    folder.mkdir(parents=True)
    if text is not None:
        (folder / "config.pbtxt").write_text(text)
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            content(path)


def make_repo(root: Path, text: str, files: Files, extra: Extra) -> Path:
    write_model(root / "m", text, files)
    for name, (extra_text, extra_files) in extra.items():
        write_model(root / name, extra_text, extra_files)
    return root


def check_case(row: Case, tmp_path: Path) -> None:
    """The good repository has no problem at all; the bad one has the row's problem at the marked line."""
    good = make_repo(tmp_path / "good", row.good, row.files, row.extra if row.good_extra is None else row.good_extra)
    assert [str(p) for p in validate_repository(good, strict=row.strict)] == []
    bad = make_repo(tmp_path / "bad", row.bad, row.bad_files, row.extra)
    problems = validate_repository(bad, strict=row.strict)
    own = str(bad / "m" / "config.pbtxt")
    hits = [p for p in problems if row.fragment in p.message and p.file == own]
    assert hits, f"expected {row.fragment!r} in {[str(p) for p in problems]}"
    marked = [n for n, line in enumerate(row.bad.split("\n"), 1) if line.endswith("#!")]
    assert [p.line for p in hits] == marked[:1] * len(hits), [str(p) for p in problems]
    assert {p.severity for p in hits} == {row.severity}
    assert hits[0].file == str(bad / "m" / "config.pbtxt")
    tag = "" if row.severity == "error" else f"{row.severity}: "
    assert str(hits[0]) == f"{hits[0].file}:{hits[0].line}: {tag}{hits[0].message}"
