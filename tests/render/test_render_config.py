"""config.pbtxt rendering per platform: what is derived from the artifact, what the spec sets, and
the spec/artifact disagreements that must stop rendering with a GeneratorError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from generator.artifacts import Artifact
from generator.errors import GeneratorError
from generator.render import render_config
from generator.signature import read_onnx_signature
from tests.render.conftest import Project, identity_onnx

Parse = Callable[[str], Any]


def _kind(group: Any) -> str:
    from tritonclient.grpc import model_config_pb2

    return str(model_config_pb2.ModelInstanceGroup.Kind.Name(group.kind))


def _params(config: Any) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def test_python_onnxruntime_config(project: Project, parse: Parse) -> None:
    rv = project.variant()
    config = parse(render_config(rv, project.artifact(rv)))
    assert config.name == "tiny_fp32" and config.backend == "python" and not config.platform
    assert config.max_batch_size == 8
    assert [(i.name, list(i.dims)) for i in config.input] == [("input", [1, 8, 8])]  # batch dim excluded
    assert [(o.name, list(o.dims), o.label_filename) for o in config.output] == [("logits", [4], "labels.txt")]
    assert _params(config) == {"onnx_file": "model.onnx", "intra_op_threads": "1", "inter_op_threads": "1"}
    assert [(_kind(g), g.count) for g in config.instance_group] == [("KIND_CPU", 1)]
    # max_batch_size > 0: dynamic batching is on by default (no preferred sizes, no delay)
    assert config.HasField("dynamic_batching") and not config.dynamic_batching.preferred_batch_size
    assert not config.model_warmup


def test_spec_parameters_win_over_python_defaults(project: Project, parse: Parse) -> None:
    rv = project.variant(triton={"parameters": {"intra_op_threads": 4, "flag": True, "ratio": 0.1}})
    params = _params(parse(render_config(rv, project.artifact(rv))))
    assert params == {"onnx_file": "model.onnx", "intra_op_threads": "4", "inter_op_threads": "1",
                      "flag": "true", "ratio": "0.1"}


def test_onnxruntime_config(project: Project, parse: Parse) -> None:
    rv = project.variant({"precision": "fp32", "target": "onnxruntime"})
    config = parse(render_config(rv, project.artifact(rv)))
    assert config.name == "tiny_ort_fp32" and config.platform == "onnxruntime_onnx"
    assert not _params(config)  # the python-backend parameters are not for this backend
    assert _kind(config.instance_group[0]) == "KIND_CPU"


def test_tensorrt_config_defaults_and_cuda_graphs(project: Project, parse: Parse) -> None:
    triton = {"optimization": {"cuda_graphs": True}}
    rv = project.variant({"precision": "fp32", "target": "tensorrt"}, triton=triton)
    config = parse(render_config(rv, project.artifact(rv)))
    assert config.name == "tiny_trt_fp32" and config.platform == "tensorrt_plan"
    assert _kind(config.instance_group[0]) == "KIND_GPU"
    assert config.optimization.cuda.graphs is True
    python = project.variant(triton=triton)  # inherited cuda_graphs is dropped where it does not apply
    assert not parse(render_config(python, project.artifact(python))).HasField("optimization")


def test_tensorrt_max_batch_must_fit_the_smallest_profile(project: Project) -> None:
    rv = project.variant({"precision": "fp32", "target": "tensorrt"})
    render_config(rv, project.artifact(rv, profile_max=8))
    with pytest.raises(GeneratorError, match="smallest profile max batch 4"):
        render_config(rv, project.artifact(rv, profile_max=4))


def test_tensorrt_cc_model_filenames(project: Project, parse: Parse) -> None:
    rv = project.variant({"precision": "fp32", "target": "tensorrt"})
    config = parse(render_config(rv, project.artifact(rv, cc=("9.0", "8.0"))))
    assert dict(config.cc_model_filenames) == {"8.0": "model_sm80.plan", "9.0": "model_sm90.plan"}
    with pytest.raises(GeneratorError, match="compute capability"):
        render_config(rv, project.artifact(rv, cc=("sm80",)))


def test_instance_group_profiles(project: Project, parse: Parse) -> None:
    groups = {"instance_groups": [{"kind": "KIND_GPU", "count": 2, "gpus": [0], "profiles": ["0"]}]}
    rv = project.variant({"precision": "fp32", "target": "tensorrt", "triton": groups})
    group = parse(render_config(rv, project.artifact(rv))).instance_group[0]
    assert (group.count, list(group.gpus), list(group.profile)) == (2, [0], ["0"])
    bad_index = {"instance_groups": [{"kind": "KIND_GPU", "profiles": ["1"]}]}  # the engine has one profile
    rv = project.variant({"precision": "fp32", "target": "tensorrt", "triton": bad_index})
    with pytest.raises(GeneratorError, match="not profile indices"):
        render_config(rv, project.artifact(rv))
    rv = project.variant({"precision": "fp32", "triton": groups})
    with pytest.raises(GeneratorError, match="tensorrt only"):
        render_config(rv, project.artifact(rv))


def test_serving_blocks(project: Project, parse: Parse) -> None:
    triton = {
        "dynamic_batching": {
            "preferred_batch_sizes": [8, 4], "max_queue_delay_us": 250, "preserve_ordering": True,
            "queue_policy": {"timeout_action": "REJECT", "default_timeout_us": 1000, "max_queue_size": 16},
        },
        "warmup": [{"name": "zeros", "batch_size": 4, "data": "zero"}, {"name": "noise", "data": "random", "count": 2}],
        "version_policy": {"specific": [1]},
        "response_cache": True,
        "optimization": {"input_pinned_memory": False},
    }
    config = parse(render_config(rv := project.variant(triton=triton), project.artifact(rv)))
    batching = config.dynamic_batching
    assert list(batching.preferred_batch_size) == [4, 8] and batching.max_queue_delay_microseconds == 250
    assert batching.preserve_ordering and batching.default_queue_policy.default_timeout_microseconds == 1000
    assert batching.default_queue_policy.max_queue_size == 16
    zeros, noise = config.model_warmup
    assert (zeros.name, zeros.batch_size, zeros.count) == ("zeros", 4, 1)
    assert list(zeros.inputs["input"].dims) == [1, 8, 8] and zeros.inputs["input"].zero_data
    assert noise.inputs["input"].random_data and noise.count == 2
    assert list(config.version_policy.specific.versions) == [1]
    assert config.response_cache.enable
    assert config.optimization.input_pinned_memory.enable is False


def test_version_policies(project: Project, parse: Parse) -> None:
    for policy, field in (({"latest": 2}, "latest"), ({"all": True}, "all")):
        rv = project.variant(triton={"version_policy": policy})
        config = parse(render_config(rv, project.artifact(rv)))
        assert config.version_policy.WhichOneof("policy_choice") == field


def test_non_batching_model_keeps_full_shapes(project: Project, parse: Parse) -> None:
    rv = project.variant(max_batch_size=0, profiles=[])
    config = parse(render_config(rv, project.artifact(rv)))
    assert list(config.input[0].dims) == [-1, 1, 8, 8] and list(config.output[0].dims) == [-1, 4]


def test_overrides_fix_dynamic_dims(project: Project, parse: Parse) -> None:
    rv = project.variant(max_batch_size=0, profiles=[], inputs=[{"name": "input", "dims": [2, 1, 8, 8]}])
    assert list(parse(render_config(rv, project.artifact(rv))).input[0].dims) == [2, 1, 8, 8]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"inputs": [{"name": "image"}]}, "no input 'image'"),
        ({"inputs": [{"name": "input", "dtype": "fp16"}]}, "dtype fp16 does not match"),
        ({"inputs": [{"name": "input", "dims": [1, 8]}]}, "has rank 2"),
        ({"inputs": [{"name": "input", "dims": [3, 8, 8]}]}, "fixed 1"),
        ({"outputs": [{"name": "logits", "dims": [5]}]}, "fixed 4"),
        ({"labels": "other_labels.txt"}, "3 labels"),
        ({"triton": {"warmup": [{"batch_size": 2}]}, "max_batch_size": 0, "profiles": []}, "batch_size must be 1"),
        ({"triton": {"instance_groups": [{"kind": "KIND_CPU", "gpus": [0]}]}}, "cannot list gpus"),
        ({"triton": {"dynamic_batching": {"preferred_batch_sizes": [16]}}}, "preferred batch sizes <= it"),
    ],
)
def test_spec_and_artifact_disagreements(project: Project, model: dict[str, Any], message: str) -> None:
    (project.root / "other_labels.txt").write_text("a\nb\nc\n")
    rv = project.variant(**model)
    with pytest.raises(GeneratorError, match=message):
        render_config(rv, project.artifact(rv))


def test_onnxruntime_outputs_must_equal_the_model(project: Project) -> None:
    path = identity_onnx(project.root / "dyn.onnx", ["batch", "width"])
    outputs = [{"name": "y", "dims": [3]}]
    python = project.variant(outputs=outputs, labels=None, profiles=[])
    ort = project.variant({"precision": "fp32", "target": "onnxruntime"}, outputs=outputs, labels=None, profiles=[])
    render_config(python, Artifact(python.name, "onnx", path, read_onnx_signature(path)))  # may fix a -1
    with pytest.raises(GeneratorError, match="exactly as in the model"):
        render_config(ort, Artifact(ort.name, "onnx", path, read_onnx_signature(path)))


def test_batching_needs_a_dynamic_first_dim(project: Project) -> None:
    path = identity_onnx(project.root / "fixed.onnx", [1, 3])
    rv = project.variant(labels=None, profiles=[])
    with pytest.raises(GeneratorError, match="needs a dynamic first dimension"):
        render_config(rv, Artifact(rv.name, "onnx", path, read_onnx_signature(path)))


def test_warmup_dims_come_from_the_profile_when_dynamic(project: Project, parse: Parse) -> None:
    path = identity_onnx(project.root / "dyn.onnx", ["batch", "width"])
    profile = {"x": {"min": [1, 2], "opt": [4, 16], "max": [8, 32]}}
    rv = project.variant(labels=None, profiles=[profile], triton={"warmup": [{"batch_size": 2}]})
    config = parse(render_config(rv, Artifact(rv.name, "onnx", path, read_onnx_signature(path))))
    assert list(config.model_warmup[0].inputs["x"].dims) == [16]
    rv = project.variant(labels=None, profiles=[], triton={"warmup": [{"batch_size": 2}]})
    with pytest.raises(GeneratorError, match="concrete shape"):
        render_config(rv, Artifact(rv.name, "onnx", path, read_onnx_signature(path)))


def test_wrong_artifact_kind(project: Project) -> None:
    python = project.variant()
    trt = project.variant({"precision": "fp32", "target": "tensorrt"})
    with pytest.raises(GeneratorError, match="needs an artifact of kind 'onnx'"):
        render_config(python, project.artifact(trt))


def test_dynamic_batching_default_follows_max_batch_size_and_can_be_turned_off(project: Project, parse: Parse) -> None:
    """Batching models get a dynamic batcher unless the spec says `enabled: false`; mbs 0 never gets one."""
    off = project.variant({"precision": "fp32", "triton": {"dynamic_batching": {"enabled": False}}})
    assert not parse(render_config(off, project.artifact(off))).HasField("dynamic_batching")
    unbatched = project.variant(max_batch_size=0)
    assert not parse(render_config(unbatched, project.artifact(unbatched))).HasField("dynamic_batching")
