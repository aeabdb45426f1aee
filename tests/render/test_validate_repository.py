"""`validate_repository` / `trgen validate` on whole repositories, including ones trgen did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.cli import main
from generator.errors import GeneratorError
from generator.validation import validate_repository
from tests.render.conftest import Project, identity_onnx
from tests.render.validation_cases import (
    ENS,
    INNER,
    ORT,
    PY,
    make_repo,
    onnx,
    write_model,
)


def test_foreign_repository_without_names_and_with_an_ensemble(tmp_path: Path) -> None:
    """Typical hand-written repository: no `name`, backend instead of platform, an ensemble, and an
    ONNX model without config.pbtxt (Triton auto-completes it)."""
    write_model(tmp_path / "inner", INNER.replace('name: "inner"\n', ""), {"1/model.py": ""})
    write_model(
        tmp_path / "ort",
        'backend: "onnxruntime"\nmax_batch_size: 4\ninput [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] } ]\n',
        {"3/model.onnx": onnx(["b", "n"]), "0/ignored.txt": ""},
    )
    write_model(tmp_path / "m", ENS, {"1/.keep": ""})
    (tmp_path / "auto" / "1").mkdir(parents=True)
    identity_onnx(tmp_path / "auto" / "1" / "model.onnx", ["b", 3])
    assert [str(p) for p in validate_repository(tmp_path)] == []


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = """name: "other"
backend: "python"
max_batch_size: 4
input [ { name: "x" data_type: TYPE_FP32 dims: [ 0 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] label_filename: "labels.txt" } ]
instance_group [ { kind: KIND_CPU gpus: [ 0 ] } ]
dynamic_batching { preferred_batch_size: [ 8 ] }
"""
    make_repo(tmp_path, text, {}, {})
    problems = validate_repository(tmp_path)
    lines = sorted(p.line for p in problems)
    assert lines == [1, 2, 4, 5, 6, 7]  # name, no version folder, dim 0, labels, gpus, preferred size


def test_parse_errors_carry_line_and_column(tmp_path: Path) -> None:
    make_repo(tmp_path, 'name: "m"\nbackend: "python"\nmax_batch_sise: 4\n', {"1/model.py": ""}, {})
    (problem,) = validate_repository(tmp_path)
    assert problem.line == 3 and "max_batch_sise" in problem.message and "column 1" in problem.message


def test_folder_without_config_or_model_file(tmp_path: Path) -> None:
    (tmp_path / "stray" / "1").mkdir(parents=True)
    (problem,) = validate_repository(tmp_path)
    assert problem.file.endswith("stray/config.pbtxt") and "Could not determine backend" in problem.message


def test_unreadable_repository_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="cannot read the model repository"):
        validate_repository(tmp_path / "absent")


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_model(tmp_path / "good" / "m", 'backend: "python"\nmax_batch_size: 0\n', {"1/model.py": ""})
    assert main(["validate", str(tmp_path / "good")]) == 0
    write_model(tmp_path / "bad" / "m", 'name: "x"\nbackend: "python"\n', {"1/model.py": ""})
    assert main(["validate", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'bad' / 'm' / 'config.pbtxt'}:1: unexpected directory name 'm' for model 'x'" in out
    assert main(["validate", str(tmp_path / "absent")]) == 2


def test_configs_triton_completes_pass(tmp_path: Path) -> None:
    """Auto-complete (Triton's default) fills backend, platform, inputs and outputs: no false alarms."""
    write_model(tmp_path / "py_no_platform", 'max_batch_size: 0\n', {"1/model.py": ""})
    write_model(tmp_path / "py_no_config", None, {"1/model.py": ""})
    write_model(tmp_path / "empty_config.identity", "", {"1/.keep": ""})
    write_model(tmp_path / "ort_backend_only", 'backend: "onnxruntime"\nmax_batch_size: 4\n', {"1/model.onnx": onnx(["b", 3])})
    write_model(tmp_path / "trt_by_file", "", {"1/model.plan": "engine"})
    write_model(tmp_path / "ort_by_default_filename", 'default_model_filename: "model.onnx"\n', {"1/model.onnx": onnx([3])})
    assert [str(p) for p in validate_repository(tmp_path)] == []


def test_strict_mode_demands_complete_configs(tmp_path: Path) -> None:
    write_model(tmp_path / "auto", None, {"1/model.onnx": onnx(["b", 3])})
    write_model(tmp_path / "bare", 'platform: "onnxruntime_onnx"\nmax_batch_size: 4\n', {"1/model.onnx": onnx(["b", 3])})
    assert validate_repository(tmp_path) == []
    problems = [str(p) for p in validate_repository(tmp_path, strict=True)]
    assert any("auto/config.pbtxt:1: missing config.pbtxt: with auto-complete disabled" in p for p in problems), problems
    assert any("bare/config.pbtxt:1: no 'input' declared" in p for p in problems), problems
    assert any("bare/config.pbtxt:1: no 'output' declared" in p for p in problems), problems


def test_complete_configs_pass_in_both_modes(tmp_path: Path) -> None:
    make_repo(tmp_path, ORT, {"1/model.onnx": onnx(["batch", 3])}, {"p": (PY.replace('name: "m"', 'name: "p"'), {"1/model.py": ""})})
    assert validate_repository(tmp_path) == validate_repository(tmp_path, strict=True) == []


@pytest.mark.parametrize("strict", [False, True])
def test_model_file_is_checked_in_both_modes(tmp_path: Path, strict: bool) -> None:
    make_repo(tmp_path, ORT.replace("dims: [ 3 ] } ]\noutput", "dims: [ 4 ] } ]\noutput"), {"1/model.onnx": onnx(["batch", 3])}, {})
    (problem,) = validate_repository(tmp_path, strict=strict)
    assert problem.line == 4 and "fixes it to 3" in problem.message


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage"])
def test_empty_or_unreadable_model_file(tmp_path: Path, content: bytes) -> None:
    make_repo(tmp_path, ORT, {"1/model.onnx": ""}, {})
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(content)
    (problem,) = validate_repository(tmp_path)
    expected = "m/1/model.onnx is empty (0 bytes)" if not content else "m/1/model.onnx: unreadable ONNX model"
    assert problem.line == 2 and expected in problem.message, str(problem)


def test_cli_strict_flag_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_model(tmp_path / "r" / "auto", None, {"1/model.onnx": onnx(["b", 3])})
    assert main(["validate", str(tmp_path / "r")]) == 0
    assert main(["validate", "--strict", str(tmp_path / "r")]) == 1
    write_model(tmp_path / "w" / "m", 'backend: "python"\noptimization { cuda { graphs: true } }\n', {"1/model.py": ""})
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "w")]) == 0  # a warning alone does not fail
    assert ": warning: optimization.cuda" in capsys.readouterr().out


def test_auto_completed_max_batch_size(tmp_path: Path) -> None:
    """onnxruntime with max_batch_size unset, a dynamic first dim and dims without it: Triton's auto-complete
    turns batching on (no false alarm); with --strict the config is taken as written (max_batch_size 0)."""
    text = 'platform: "onnxruntime_onnx"\ninput [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]\n'
    write_model(tmp_path / "m", text, {"1/model.onnx": onnx(["batch", 3])})
    assert validate_repository(tmp_path) == []
    problems = validate_repository(tmp_path, strict=True)
    assert any(p.line == 2 and "has rank 1" in p.message for p in problems), [str(p) for p in problems]


def test_rendered_repository_of_every_platform_passes_both_modes(project: Project) -> None:
    """trgen renders complete configs: what it writes must pass with auto-complete off as well."""
    from generator.render import render_repository
    from tests.render.test_render_repository import ALL_TARGETS

    spec = project.spec(ALL_TARGETS)
    repo = render_repository(spec, project.artifacts(spec))
    assert [str(p) for p in validate_repository(repo.path)] == []
    assert [str(p) for p in validate_repository(repo.path, strict=True)] == []
