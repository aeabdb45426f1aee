"""Rule families core's `model_config_utils.cc` enforces beyond the basics: batch inputs/outputs,
priorities and queue policies, sequence batching, model metrics, instance groups, TensorRT-only IO,
runtime, response cache. One row per template (see `validation_cases`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.render.validation_cases import Case, add, case, check_case, sub

X = 'name: "x" data_type: TYPE_FP32 dims: [ 3 ]'
BI = 'batch_input [ { kind: BATCH_ELEMENT_COUNT target_name: "n" data_type: TYPE_INT32 source_input: [ "x" ] } ]'
BO = 'batch_output [ { target_name: [ "y" ] kind: BATCH_SCATTER_WITH_INPUT_SHAPE source_input: [ "x" ] } ]'
DB = "dynamic_batching { priority_levels: 2 default_priority_level: 1 }"
SEQ_START = 'control_input [ { name: "start" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ]'
SEQ_CORRID = 'control_input [ { name: "id" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } ] } ]'
METRIC = 'model_metrics { metric_control [ { metric_identifier { family: "nv_inference_request_duration_us" } histogram_options { buckets: [ 1, 10 ] } } ] }'

END = '{{ name: "{}" control [ {{ kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] }} ] }}'


def seq(body: str) -> str:
    return "sequence_batching { " + body + " }"


CASES = [
    # batch_input / batch_output (ValidateBatchIO)
    case("batch-io", "batch input kind 'BATCH_ELEMENT_COUNT' expects 1 source input, got 2",
         add(BI.replace('[ "x" ]', '[ "x", "x" ]')), good=add(BI)),
    case("batch-io", "unknown batch input kind '9'", add(BI.replace("BATCH_ELEMENT_COUNT", "9")), good=add(BI)),
    case("batch-io", "batch input data type must be TYPE_INT32 or TYPE_FP32", add(BI.replace("TYPE_INT32", "TYPE_INT64")),
         good=add(BI.replace("TYPE_INT32", "TYPE_FP32"))),
    case("batch-io", "unknown source input name 'z'", add(BI.replace('[ "x" ]', '[ "z" ]')), good=add(BI)),
    case("batch-io", "batch output kind 'BATCH_SCATTER_WITH_INPUT_SHAPE' expects 1 source input, got 0",
         add(BO.replace(' source_input: [ "x" ]', "")), good=add(BO)),
    case("batch-io", "unknown batch output kind '4'", add(BO.replace("BATCH_SCATTER_WITH_INPUT_SHAPE", "4")), good=add(BO)),
    case("batch-io", "unknown target output name 'w'", add(BO.replace('[ "y" ]', '[ "w" ]')), good=add(BO)),
    case("batch-io", "target output name 'y' can only be specified once", add(BO.replace('[ "y" ]', '[ "y", "y" ]')),
         good=add(BO)),
    # priorities and queue policies
    case("priority-levels", "default priority level must be in range [1, 2] for m", add(DB.replace("level: 1", "level: 3")),
         good=add(DB)),
    case("priority-levels", "default priority level must be in range [1, 2]", add(DB.replace(" default_priority_level: 1", "")),
         good=add(DB)),
    case("priority-levels", "priority queue policy must have priority level in range [1, 2]",
         add(DB[:-1] + "priority_queue_policy { key: 3 value { max_queue_size: 4 } } }"),
         good=add(DB[:-1] + "priority_queue_policy { key: 2 value { max_queue_size: 4 } } }")),
    case("preserve-ordering", "Only one priority level is allowed when 'preserve_ordering' is true",
         add(DB[:-1] + "preserve_ordering: true }"),
         good=add("dynamic_batching { priority_levels: 1 default_priority_level: 1 preserve_ordering: true }")),
    case("preserve-ordering", "Queue policy can not have DELAY as timeout action",
         add("dynamic_batching { preserve_ordering: true priority_levels: 1 default_priority_level: 1 priority_queue_policy "
             "{ key: 1 value { timeout_action: DELAY default_timeout_microseconds: 100 } } }"),
         good=add("dynamic_batching { preserve_ordering: false priority_levels: 1 default_priority_level: 1 "
                  "priority_queue_policy { key: 1 value { timeout_action: DELAY default_timeout_microseconds: 100 } } }")),
    case("dynamic-batching", "dynamic batching preferred size must be positive", add("dynamic_batching { preferred_batch_size: [ 0 ] }"),
         good=add("dynamic_batching { preferred_batch_size: [ 8 ] }")),
    # sequence batching controls and strategies
    case("sequence-control-names", "sequence batching control tensor must have a name",
         add(seq(SEQ_START.replace('name: "start" ', ""))), good=add(seq(SEQ_START))),
    case("sequence-control-names", "control tensor 'start' is specified for multiple control kinds",
         add(seq(SEQ_START[:-2] + ", " + END.format("start") + " ]")),
         good=add(seq(SEQ_START[:-2] + ", " + END.format("end") + " ]"))),
    case("sequence-controls", "sequence batching specifies multiple CONTROL_SEQUENCE_START tensors",
         add(seq(SEQ_START[:-2] + ", " + END.format("s2").replace("END", "START") + " ]")),
         good=add(seq(SEQ_START))),
    case("sequence-controls", "must specify either 'int32_false_true', 'fp32_false_true' or 'bool_false_true' for "
         "CONTROL_SEQUENCE_START", add(seq(SEQ_START.replace(" int32_false_true: [ 0, 1 ]", ""))), good=add(seq(SEQ_START))),
    case("sequence-controls", "specifies more than one from 'int32_false_true'",
         add(seq(SEQ_START.replace("[ 0, 1 ]", "[ 0, 1 ] bool_false_true: [ false, true ]"))), good=add(seq(SEQ_START))),
    case("sequence-controls", "control 'int32_false_true' must have exactly 2 entries for CONTROL_SEQUENCE_START",
         add(seq(SEQ_START.replace("[ 0, 1 ]", "[ 1 ]"))), good=add(seq(SEQ_START))),
    case("sequence-controls", "control 'fp32_false_true' must have exactly 2 entries for CONTROL_SEQUENCE_READY",
         add(seq(SEQ_START.replace("START int32_false_true: [ 0, 1 ]", "READY fp32_false_true: [ 0, 1, 1 ]"))),
         good=add(seq(SEQ_START.replace("START int32_false_true: [ 0, 1 ]", "READY fp32_false_true: [ 0, 1 ]")))),
    case("sequence-controls", "control 'bool_false_true' must have exactly 2 entries for CONTROL_SEQUENCE_END",
         add(seq(SEQ_START.replace("START int32_false_true: [ 0, 1 ]", "END bool_false_true: [ true ]"))),
         good=add(seq(SEQ_START.replace("START int32_false_true: [ 0, 1 ]", "END bool_false_true: [ false, true ]")))),
    case("sequence-controls", "must not specify either 'int32_false_true', 'fp32_false_true' or 'bool_false_true' for "
         "CONTROL_SEQUENCE_CORRID", add(seq(SEQ_CORRID.replace("data_type: TYPE_UINT64", "data_type: TYPE_UINT64 "
                                                                 "int32_false_true: [ 0, 1 ]"))),
         good=add(seq(SEQ_CORRID))),
    case("sequence-controls", "unexpected data type for control CONTROL_SEQUENCE_CORRID for m",
         add(seq(SEQ_CORRID.replace("TYPE_UINT64", "TYPE_FP32"))), good=add(seq(SEQ_CORRID.replace("TYPE_UINT64", "TYPE_STRING")))),
    case("sequence-controls", "unknown sequence batching control kind '7'",
         add(seq(SEQ_START.replace("CONTROL_SEQUENCE_START", "7"))), good=add(seq(SEQ_START))),
    case("sequence-strategy", "sequence batching preferred batch size must be <= max batch size",
         add(seq("oldest { max_candidate_sequences: 4 preferred_batch_size: [ 4, 16 ] }")),
         good=add(seq("oldest { max_candidate_sequences: 4 preferred_batch_size: [ 4, 8 ] }"))),
    case("sequence-strategy", "sequence batching preferred batch size must be positive",
         add(seq("oldest { max_candidate_sequences: 4 preferred_batch_size: [ 0 ] }")),
         good=add(seq("oldest { max_candidate_sequences: 4 }"))),
    case("sequence-strategy", "minimum slot utilization must be in range (0.0, 1.0]",
         add(seq("direct { minimum_slot_utilization: 1.5 }")), good=add(seq("direct { minimum_slot_utilization: 0.5 }"))),
    # model metrics
    case("model-metrics", "metric identifier must specify non-empty 'family'",
         add(METRIC.replace('family: "nv_inference_request_duration_us"', 'family: ""')), good=add(METRIC)),
    case("model-metrics", "metric control must specify 'metric_identifier'",
         add(METRIC.replace('metric_identifier { family: "nv_inference_request_duration_us" } ', "")), good=add(METRIC)),
    case("model-metrics", "metric control must specify 'histogram_options'",
         add(METRIC.replace(" histogram_options { buckets: [ 1, 10 ] }", "")), good=add(METRIC)),
    case("model-metrics", "histogram options must specify non-empty 'buckets'",
         add(METRIC.replace("buckets: [ 1, 10 ]", "buckets: [ ]")), good=add(METRIC)),
    # instance groups
    case("instance-groups", "has kind KIND_MODEL but specifies one or more GPUs",
         sub("kind: KIND_CPU count: 1", "kind: KIND_MODEL count: 1 gpus: [ 0 ]"),
         good=sub("kind: KIND_CPU count: 1", "kind: KIND_MODEL count: 1", mark=False)),
    case("instance-groups", "specifies invalid or unsupported gpu id -1",
         sub("kind: KIND_CPU count: 1", "kind: KIND_GPU count: 1 gpus: [ -1 ]"),
         good=sub("kind: KIND_CPU count: 1", "kind: KIND_GPU count: 1 gpus: [ 1 ]", mark=False)),
    case("tensorrt-only", "profile name must not be empty", sub("kind: KIND_GPU count: 1", 'kind: KIND_GPU count: 1 profile: [ "" ]'),
         base="trt", good=sub("kind: KIND_GPU count: 1", 'kind: KIND_GPU count: 1 profile: [ "0" ]', mark=False)),
    case("tensorrt-only", "specifies invalid profile -1", sub("kind: KIND_GPU count: 1", 'kind: KIND_GPU count: 1 profile: [ "-1" ]'),
         base="trt"),
    # IO formats: NHWC/NCHW, non-linear IO (TensorRT only, 3 dims)
    case("io-formats", "model input NHWC/NCHW require 3 dims", sub(X, X + " format: FORMAT_NCHW"),
         good=lambda t: t.replace(X, 'name: "x" data_type: TYPE_FP32 dims: [ 3, 1, 1 ] format: FORMAT_NCHW')
         .replace("dims: [ 3 ] } ]\ninstance", "dims: [ 3 ] } ]\ninstance")),
    case("io-formats", "Non-linear IO format is only supported for the TensorRT platform",
         sub(X, X + " is_non_linear_format_io: true")),
    case("io-formats", "Non-linear IO format input requires 3 dims", sub(X, X + " is_non_linear_format_io: true"), base="trt"),
    case("reshape", "has different number of variable-size dimensions for dims and reshape",
         sub(X, 'name: "x" data_type: TYPE_FP32 dims: [ -1, 3 ] reshape { shape: [ -1, 3, -1 ] }'),
         good=sub(X, 'name: "x" data_type: TYPE_FP32 dims: [ 3 ] reshape { shape: [ 1, 3 ] }', mark=False)),
    # runtime, response cache
    case("runtime", "backend library name '../../lib/libevil.so' escapes backend directory 'backends/python'",
         add('runtime: "../../lib/libevil.so"'), good=add('runtime: "model.py"')),
    case("runtime", "escapes backend directory", add('runtime: "/opt/lib/libtriton_python.so"'),
         good=add('runtime: "libtriton_python.so"')),
    case("response-cache", "Response Cache does not currently support model m with sequence batching scheduler",
         lambda t: t + "sequence_batching { }\nresponse_cache { enable: true }  #!\n",
         good=lambda t: t + "sequence_batching { }\nresponse_cache { enable: false }\n"),
    case("response-cache", "with 'decoupled' transaction policy",
         lambda t: t + "model_transaction_policy { decoupled: true }\nresponse_cache { enable: true }  #!\n",
         good=lambda t: t + "model_transaction_policy { decoupled: true }\n"),
]


@pytest.mark.parametrize("row", CASES, ids=[f"{c.rule}-{i}" for i, c in enumerate(CASES)])
def test_rule_catches_bad_and_passes_good(row: Case, tmp_path: Path) -> None:
    check_case(row, tmp_path)
