"""`check` vs `render`: any spec `check` accepts, `render` does not refuse as bad input (exit 2) either.

Hypothesis combines settings that render looks at (tensor overrides, labels, batching, warmup,
instance groups, version policy, target) on the tiny CNN; `check` runs first, then `render`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.cli import main
from tests.conftest import make_tiny_cnn

MODEL = {
    "inputs": ["[{name: input, dims: [1, 8, 8]}]", "[{name: input, dims: [2, 8, 8]}]", "[{name: nope}]",
               "[{name: input, dtype: fp16}]", "[{name: input, dims: [-1, 8, 8]}]", "[{name: input, dims: [1, 8]}]"],
    "outputs": ["[{name: logits, dims: [4]}]", "[{name: logits, dims: [5]}]", "[{name: logits, dtype: fp32}]"],
    "labels": ["labels3.txt", "labels4.txt", "missing.txt"],
    "max_batch_size": ["0", "4", "8", "64"],
}
TRITON = {
    "dynamic_batching": ["{preferred_batch_sizes: [4, 8]}", "{preferred_batch_sizes: [16]}", "{enabled: false}",
                         "{max_queue_delay_us: 100}"],
    "warmup": ["[{batch_size: 2}]", "[{batch_size: 1, data: random}]"],
    "instance_groups": ["[{kind: KIND_CPU, gpus: [0]}]", "[{kind: KIND_CPU, count: 2}]", "[{profiles: ['0']}]",
                        "[{kind: KIND_GPU}]"],
    "version_policy": ["{latest: 2}", "{specific: [1, 3]}", "{all: true}"],
    "parameters": ["{intra_op_threads: 2}"],
}
VARIANTS = ["{precision: fp32}", "{precision: fp32, target: onnxruntime}", "{precision: fp16}",
            "{precision: fp32, version: 3}"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agree")
    make_tiny_cnn(root / "tiny.onnx")
    (root / "labels3.txt").write_text("a\nb\nc\n")
    (root / "labels4.txt").write_text("a\nb\nc\nd\n")
    return root


def _spec(model: dict[str, str], triton: dict[str, str], variants: list[str]) -> str:
    lines = ["version: 1", "workdir: build", "repository: repo"]
    if triton:
        lines += ["triton:"] + [f"  {k}: {v}" for k, v in triton.items()]
    lines += ["models:", "  - name: tiny", "    onnx: tiny.onnx"]
    lines += [f"    {k}: {v}" for k, v in model.items()]
    lines += ["    variants:"] + [f"      - {v}" for v in variants]
    return "\n".join(lines) + "\n"


def _pick(table: dict[str, list[str]]) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in table.items()})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=_pick(MODEL), triton=_pick(TRITON),
       variants=st.lists(st.sampled_from(VARIANTS), min_size=1, max_size=2, unique=True))
def test_what_check_accepts_render_does_not_refuse(folder: Path, model: dict[str, str], triton: dict[str, str],
                                                    variants: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    spec = folder / "spec.yaml"
    spec.write_text(_spec(model, triton, variants))
    checked = main(["check", str(spec)])
    check_err = capsys.readouterr().err
    assert checked in (0, 2), check_err
    if checked != 0:
        return
    rendered = main(["render", str(spec)])
    render_err = capsys.readouterr().err
    assert rendered == 0, f"check accepted but render said:\n{render_err}\n{spec.read_text()}"
