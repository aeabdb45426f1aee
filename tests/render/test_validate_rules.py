"""The rules of the model, io, scheduler, instance-group, warmup, file and model-file families: one
row per rule (see `validation_cases`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.render.validation_cases import (
    BASES,
    ENS,
    INNER,
    ONNX_FILE,
    Case,
    add,
    case,
    check_case,
    make_repo,
    mark,
    onnx,
    sidecar,
    sub,
    write_model,
)

__all__ = ["ENS", "INNER", "make_repo", "onnx", "write_model"]

CASES = [
    case("platform", "Could not determine backend for model 'm'", lambda t: sub('name: "m"', 'name: "m"')(t).replace('backend: "python"\n', ""),
         bad_files={"1/.keep": ""}),
    case("platform", "unexpected platform type 'onnxruntime_onxx' for m (did you mean 'onnxruntime_onnx'?)",
         sub('platform: "onnxruntime_onnx"', 'platform: "onnxruntime_onxx"'), base="ort"),
    case("platform", "must have platform type 'ensemble' and empty backend type", sub('platform: "ensemble"', 'platform: "ensemble" backend: "python"'),
         base="ens"),
    case("platform", "is not one of Triton's standard backends", sub('backend: "python"', 'backend: "pyton"'), severity="warning",
         bad_files={"1/model.pyton": ""}),
    case("platform", "unexpected 'platform' and 'backend' pair, got:onnxruntime_onnx, tensorrt", sub('platform: "onnxruntime_onnx"', 'platform: "onnxruntime_onnx" backend: "tensorrt"'),
         base="ort", good=sub('platform: "onnxruntime_onnx"', 'platform: "onnxruntime_onnx" backend: "onnxruntime"', mark=False)),
    case("name", "must equal the folder name", sub('name: "m"', 'name: "model"')),
    case("max-batch-size", "'max_batch_size' must be non-negative value for m", sub("max_batch_size: 8", "max_batch_size: -1")),
    case("io-fields", "must specify 'data_type'", sub('name: "x" data_type: TYPE_FP32', 'name: "x"')),
    case("io-fields", "must specify 'dims'", sub('name: "y" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "y" data_type: TYPE_FP32')),
    case("io-fields", "input 0 must specify 'name'", sub('input [ { name: "x" data_type', 'input [ { data_type')),
    case("io-fields", "used twice", add('input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]')),
    case("dims", "model input 'x' dimension must be integer >= 1, or -1", sub('name: "x" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "x" data_type: TYPE_FP32 dims: [ 0 ]'),
         good=sub('name: "x" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "x" data_type: TYPE_FP32 dims: [ -1 ]', mark=False)),
    case("reshape", "has different size for dims and reshape",
         sub("dims: [ 3 ] } ]\noutput", "dims: [ 3 ] reshape { shape: [ 2, 2 ] } } ]\noutput"),
         good=sub("dims: [ 3 ] } ]\noutput", "dims: [ 3 ] reshape { shape: [ 3, 1 ] } } ]\noutput", mark=False)),
    case("reshape", "cannot have empty reshape for non-batching model",
         lambda t: sub("dims: [ 3 ] } ]\noutput", "dims: [ 1 ] reshape { shape: [ ] } } ]\noutput")(t).replace("max_batch_size: 8", "max_batch_size: 0"),
         good=sub("dims: [ 3 ] } ]\noutput", "dims: [ 1 ] reshape { shape: [ ] } } ]\noutput", mark=False)),
    case("dynamic-batching", "dynamic batching preferred size must be <= max batch size for m", add("dynamic_batching { preferred_batch_size: [ 4, 16 ] }"),
         good=add("dynamic_batching { preferred_batch_size: [ 4, 8 ] }")),
    case("preserve-ordering", "Queue policy can not have DELAY as timeout action",
         add("dynamic_batching { preserve_ordering: true default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 10 } }"),
         good=add("dynamic_batching { preserve_ordering: true default_queue_policy { timeout_action: REJECT default_timeout_microseconds: 10 } }")),
    case("one-scheduler", "another member of oneof", lambda t: t + "dynamic_batching { }\nsequence_batching { }  #!\n",
         good=add("sequence_batching { }")),
    case("scheduler", "ensemble scheduling cannot be set for model 'm'", add('ensemble_scheduling { step [ { model_name: "m" } ] }')),
    case("scheduler", "ensemble scheduling must be set for ensemble m", lambda t: sub('platform: "ensemble"', 'platform: "ensemble"')(t).split("ensemble_scheduling")[0],
         base="ens"),
    case("io-formats", "shape tensors are only supported for TensorRT platform", sub('name: "x" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "x" data_type: TYPE_FP32 dims: [ 3 ] is_shape_tensor: true')),
    case("tensorrt-only", "specifies profile field which is only supported for TensorRT models", sub("kind: KIND_CPU count: 1", 'kind: KIND_CPU count: 1 profile: [ "0" ]')),
    case("cuda-graphs", "only used by TensorRT models", add("optimization { cuda { graphs: true } }"), severity="warning"),
    case("instance-groups", "has kind KIND_CPU but specifies one or more GPUs", sub("kind: KIND_CPU count: 1", "kind: KIND_CPU count: 1 gpus: [ 0 ]"),
         good=sub("kind: KIND_CPU count: 1", "kind: KIND_GPU count: 1 gpus: [ 0 ]", mark=False)),
    case("tensorrt-only", "must be the string of a non-negative integer", sub("kind: KIND_GPU count: 1", 'kind: KIND_GPU count: 1 profile: [ "first" ]'),
         base="trt"),
    case("warmup", "batch_size must be 1", lambda t: add('model_warmup { name: "w" batch_size: 2 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } }')(t).replace("max_batch_size: 8", "max_batch_size: 0"),
         good=add('model_warmup { name: "w" batch_size: 2 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } }')),
    case("warmup", "needs concrete dims", add('model_warmup { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ -1 ] zero_data: true } } }')),
    case("warmup", "warmup/x.bin does not exist",
         add('model_warmup { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 3 ] input_data_file: "x.bin" } } }'),
         good=add('model_warmup { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 3 ] input_data_file: "x.bin" } } }'),
         files={"warmup/x.bin": "\0" * 12}, bad_files=BASES["py"][1]),
    case("ensemble", "instance group should not be specified for ensemble 'm'", add("instance_group [ { kind: KIND_CPU } ]"), base="ens"),
    case("ensemble", "ensemble input 'z' for ensemble m' is not used", lambda t: t.replace("input [", 'input [ { name: "z" data_type: TYPE_FP32 dims: [ 1 ] },  #!\n', 1),
         base="ens"),
    case("ensemble", "ensemble output 'y' for ensemble m' is not used", lambda t: sub('output [ { name: "y"', 'output [ { name: "y"')(t).replace('value: "y"', 'value: "t"'),
         base="ens"),
    case("ensemble", "must specify 'output_map' in step 0 of ensemble 'm'", lambda t: t.replace("    {\n", "    {  #!\n").replace('      output_map { key: "y" value: "y" }\n', ""),
         base="ens"),
    case("ensemble", "optimization should not be specified for ensemble 'm'", add("optimization { priority: PRIORITY_MAX }"), base="ens"),
    case("ensemble", "model_warmup can not be specified for ensemble 'm'", add('model_warmup [ { name: "w" batch_size: 1 } ]'), base="ens"),
    case("ensemble", "must specify 'step' for ensemble 'm'", lambda t: t.split("ensemble_scheduling")[0] + "ensemble_scheduling { }  #!\n",
         base="ens"),
    case("ensemble", "must specify 'model_name' in step 0 of ensemble 'm'",
         lambda t: t.replace("    {\n", "    {  #!\n").replace('      model_name: "inner"\n', ""), base="ens"),
    case("ensemble", "must specify 'input_map' in step 0 of ensemble 'm'",
         lambda t: t.replace("    {\n", "    {  #!\n").replace('      input_map { key: "x" value: "x" }\n', ""), base="ens"),
    case("ensemble", "ensemble tensor 'y' can appear in an output map only once for ensemble 'm' step 1",
         lambda t: t.replace("    }\n  ]", '    },\n    { model_name: "inner" model_version: -1 input_map { key: "x" value: "x" } '
                             'output_map { key: "y" value: "y" } }  #!\n  ]'), base="ens"),
    case("ensemble", "output 'y' for ensemble 'm' is not written",
         lambda t: mark('output [ { name: "y"')(t).replace('input_map { key: "x" value: "x" }', 'input_map { key: "x" value: "t" }'),
         base="ens"),
    case("ensemble", "ensemble tensor 'extra' is unused in ensemble 'm'",
         sub('output_map { key: "y" value: "y" }', 'output_map [ { key: "y" value: "y" }, { key: "y2" value: "extra" } ]'), base="ens"),
    case("dims", "model input 'x' reshape dimensions must be integer >= 1",
         sub('name: "x" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "x" data_type: TYPE_FP32 dims: [ 3 ] reshape { shape: [ 0, 3 ] }'),
         good=sub('name: "x" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "x" data_type: TYPE_FP32 dims: [ 3 ] reshape { shape: [ 3, 1 ] }',
                  mark=False)),
    case("io-formats", "shape tensors are only supported for TensorRT platform (output 'y')",
         sub('name: "y" data_type: TYPE_FP32 dims: [ 3 ]', 'name: "y" data_type: TYPE_FP32 dims: [ 3 ] is_shape_tensor: true')),
    case("ensemble-members", "contains models that are not available: missing", sub('model_name: "inner"', 'model_name: "missing"'), base="ens"),
    case("versions", "at least one version must be available", sub('backend: "python"', 'backend: "python"'), bad_files={"01/model.py": ""}),
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
    case("complete-config", "no 'input' declared: with auto-complete disabled (--strict) the onnxruntime backend",
         lambda t: mark('platform: "onnxruntime_onnx"')(t).replace('input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]\n', ""),
         base="ort", strict=True),
    case("complete-config", "no 'output' declared", lambda t: mark('platform: "tensorrt_plan"')(t).split("output [")[0],
         base="trt", strict=True),
    case("engine", "only supports max-batch 4", sub("max_batch_size: 8", "max_batch_size: 8"), base="trt",
         bad_files={"1/model.plan": "", "1/model.plan.json": sidecar(profile_max=4)}),
    case("engine", "output 'y' is TYPE_FP32 but 1/model.plan has TYPE_FP16", sub('output [ { name: "y"', 'output [ { name: "y"'), base="trt",
         bad_files={"1/model.plan": "", "1/model.plan.json": sidecar(dtype="fp16")}),
    case("engine", "unreadable engine signature", sub('platform: "tensorrt_plan"', 'platform: "tensorrt_plan"'), base="trt",
         bad_files={"1/model.plan": "", "1/model.plan.json": "{}"}),
]


@pytest.mark.parametrize("row", CASES, ids=[f"{c.rule}-{i}" for i, c in enumerate(CASES)])
def test_rule_catches_bad_and_passes_good(row: Case, tmp_path: Path) -> None:
    check_case(row, tmp_path)


def test_tensorrt_only_fields_are_fine_on_tensorrt(tmp_path: Path) -> None:
    from generator.validation import validate_repository

    text, files = BASES["trt"]
    text = text.replace("count: 1", 'count: 1 profile: [ "0" ]') + "optimization { cuda { graphs: true } }\n"
    text = text.replace('name: "x" data_type: TYPE_FP32', 'name: "x" data_type: TYPE_FP32 is_shape_tensor: false')
    assert validate_repository(make_repo(tmp_path, text, files, {})) == []
