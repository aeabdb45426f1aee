"""Ensembles against their members (core `ensemble_utils.cc` and the repository manager): members and
versions, cycles across nested ensembles, batch sizes, maps, data types, shapes, decoupled branches."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.validation import validate_repository
from tests.render.validation_cases import (
    ENS,
    INNER,
    Case,
    case,
    check_case,
    make_repo,
    mark,
    sub,
)

INNER_FILES = {"1/model.py": ""}


def inner(edit: str = "", replace: tuple[str, str] = ("", "")) -> dict[str, tuple[str, dict[str, str]]]:
    text = INNER.replace(*replace) if replace[0] else INNER
    return {"inner": (text + edit, dict(INNER_FILES))}


NESTED = ENS.replace('name: "m"', 'name: "e2"')
JOIN = """name: "join"
backend: "python"
max_batch_size: 8
input [ { name: "a" data_type: TYPE_FP32 dims: [ 3 ] }, { name: "b" data_type: TYPE_FP32 dims: [ 3 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]
"""
BRANCHES = """name: "m"
platform: "ensemble"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]
ensemble_scheduling {
  step [
    { model_name: "dec" model_version: -1 input_map { key: "x" value: "x" } output_map { key: "y" value: "t1" } },
    { model_name: "inner" model_version: -1 input_map { key: "x" value: "x" } output_map { key: "y" value: "t2" } },
    { model_name: "join" model_version: -1 input_map [ { key: "a" value: "t1" }, { key: "b" value: "t2" } ] output_map { key: "y" value: "y" } }  #!
  ]
}
"""
DECOUPLED = "model_transaction_policy { decoupled: true }\n"


def branches(decoupled: bool) -> dict[str, tuple[str, dict[str, str]]]:
    dec = INNER.replace('name: "inner"', 'name: "dec"') + (DECOUPLED if decoupled else "")
    return {**inner(), "dec": (dec, dict(INNER_FILES)), "join": (JOIN, dict(INNER_FILES))}


W_INPUT = ('dims: [ 3 ] } ]\noutput', 'dims: [ 3 ] }, { name: "w" data_type: TYPE_FP32 dims: [ 1 ] } ]\noutput')
W_OPTIONAL = (W_INPUT[0], W_INPUT[1].replace("dims: [ 1 ] }", "dims: [ 1 ] optional: true }"))
CASES = [
    case("ensemble-members", "ensemble 'm' depends on 'inner' whose required version 2 is not loaded (loaded: 1)",
         sub("model_version: -1", "model_version: 2"), base="ens", good=sub("model_version: -1", "model_version: 1", mark=False)),
    case("ensemble-cycles", "circular dependency between ensembles: m -> ... -> e2 -> m", sub('model_name: "inner"', 'model_name: "e2"'),
         base="ens", extra={**inner(), "e2": (NESTED.replace('model_name: "inner"', 'model_name: "m"'), {"1/.keep": ""})},
         good=sub('model_name: "inner"', 'model_name: "e2"', mark=False),
         good_extra={**inner(), "e2": (NESTED, {"1/.keep": ""})}),
    case("ensemble-cycles", "circular dependency between ensembles: m -> ... -> m -> m", sub('model_name: "inner"', 'model_name: "m"'),
         base="ens"),
    case("ensemble-batch-size", "allows maximum batch size 8, but it contains model inner which only allows maximum batch size to be 4",
         mark('model_name: "inner"'), base="ens", extra=inner(replace=("max_batch_size: 8", "max_batch_size: 4")),
         good_extra=inner(replace=("max_batch_size: 8", "max_batch_size: 16"))),
    case("ensemble-mapping", "ensemble tensor x is mapping to non-existing input z in model inner",
         sub('input_map { key: "x"', 'input_map { key: "z"'), base="ens"),
    case("ensemble-mapping", "input w in model inner is not mapped to any ensemble tensors", mark('model_name: "inner"'),
         base="ens", extra=inner(replace=W_INPUT), good_extra=inner(replace=W_OPTIONAL)),
    case("ensemble-mapping", "ensemble tensor y is mapped from non-existing output q in model inner",
         sub('output_map { key: "y"', 'output_map { key: "q"'), base="ens"),
    case("ensemble-mapping", "inconsistent data type: TYPE_FP32 is inferred from model m while TYPE_INT32 is inferred from model inner",
         mark('input_map { key: "x"'), base="ens", good_extra=inner(),
         extra=inner(replace=('name: "x" data_type: TYPE_FP32', 'name: "x" data_type: TYPE_INT32'))),
    case("ensemble-mapping", "inconsistent shape: [-1,3] is inferred from model m while [-1,4] is inferred from model inner",
         mark('output_map { key: "y"'), base="ens", good_extra=inner(replace=("max_batch_size: 8", "max_batch_size: 0")),
         extra=inner(replace=('name: "y" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "y" data_type: TYPE_FP32 dims: [ 4 ]'))),
    case("ensemble-members", "whose required version 0 is not loaded (loaded: 1) (model_version is not set",
         lambda t: mark('model_name: "inner"')(t).replace("      model_version: -1\n", ""), base="ens"),
    case("ensemble-members", "ensemble 'm' depends on 'inner' which has no loaded version", mark('model_name: "inner"'), base="ens",
         extra={"inner": (INNER + "version_policy { specific { versions: [ 3 ] } }\n", {"1/model.py": ""})},
         good_extra={"inner": (INNER + "version_policy { specific { versions: [ 1 ] } }\n", {"1/model.py": ""})}),
    Case("ensemble-decoupled", "step of model 'join' receives inputs originated from different decoupled models", BRANCHES,
         BRANCHES.replace("  #!", ""), {"1/.keep": ""}, {"1/.keep": ""}, branches(True), good_extra=branches(False)),
]


@pytest.mark.parametrize("row", CASES, ids=[f"{c.rule}-{i}" for i, c in enumerate(CASES)])
def test_rule_catches_bad_and_passes_good(row: Case, tmp_path: Path) -> None:
    check_case(row, tmp_path)


def test_members_completed_from_their_model_file_are_not_flagged(tmp_path: Path) -> None:
    """A member without config.pbtxt (Triton auto-completes it) is checked for what it declares only."""
    from tests.render.validation_cases import onnx

    make_repo(tmp_path, ENS, {"1/.keep": ""}, {"inner": ("", {"1/model.onnx": onnx(["b", 3])})})
    assert [str(p) for p in validate_repository(tmp_path)] == []


def test_member_completed_from_onnx_is_checked_against_its_file(tmp_path: Path) -> None:
    """An onnxruntime member without inputs/outputs in its config: Triton completes them from the ONNX file,
    and so does validation, so a shape the file contradicts is still caught."""
    from tests.render.validation_cases import onnx

    make_repo(tmp_path, ENS, {"1/.keep": ""}, {"inner": ('backend: "onnxruntime"\n', {"1/model.onnx": onnx(["b", 4])})})
    problems = [str(p) for p in validate_repository(tmp_path)]
    assert any("inconsistent shape: [-1,3] is inferred from model m while [-1,4] is inferred from model inner" in p
               for p in problems), problems


def test_invalid_member_is_reported_on_the_member(tmp_path: Path) -> None:
    """Triton fails the ensemble because its member is not valid ("depends on 'inner' which is not valid"):
    the member's own problem, in the member's file, is what the user must fix."""
    make_repo(tmp_path, ENS, {"1/.keep": ""}, {"inner": (INNER.replace("max_batch_size: 8", "max_batch_size: -1"),
                                                        {"1/model.py": ""})})
    problems = validate_repository(tmp_path)
    assert [p.file for p in problems if "must be non-negative" in p.message] == [str(tmp_path / "inner" / "config.pbtxt")]
    make_repo(tmp_path / "ok", ENS, {"1/.keep": ""}, {"inner": (INNER, {"1/model.py": ""})})
    assert validate_repository(tmp_path / "ok") == []
