"""`validate_repository` / `trgen validate` on whole repositories, including ones trgen did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.cli import main
from generator.errors import GeneratorError
from generator.render import validate_repository
from tests.render.conftest import identity_onnx
from tests.render.test_validate_rules import ENS, INNER, make_repo, onnx, write_model


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
    assert problem.file.endswith("stray/config.pbtxt") and "missing" in problem.message


def test_unreadable_repository_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="cannot read the model repository"):
        validate_repository(tmp_path / "absent")


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_model(tmp_path / "good" / "m", 'backend: "python"\nmax_batch_size: 0\n', {"1/model.py": ""})
    assert main(["validate", str(tmp_path / "good")]) == 0
    write_model(tmp_path / "bad" / "m", 'name: "x"\nbackend: "python"\n', {"1/model.py": ""})
    assert main(["validate", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'bad' / 'm' / 'config.pbtxt'}:1: name 'x' must equal the folder name 'm'" in out
    assert main(["validate", str(tmp_path / "absent")]) == 2
