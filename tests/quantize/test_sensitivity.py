"""Sensitivity ranking finds a deliberately broken tensor; fallback keeps it float and reports steps."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from generator.errors import GeneratorError
from generator.quantize.evaluate import EvalSet, Evaluator
from generator.quantize.placement import activation_tensors
from generator.quantize.report import ranking_json, ranking_plot, ranking_table
from generator.quantize.runtime import minmax_amax, run, session
from generator.quantize.sensitivity import fallback, rank

BROKEN = "r2"  # its amax is cut 40x: saturates most of the tensor


@pytest.fixture
def evaluator(zoo_model: onnx.ModelProto, zoo_inputs) -> Evaluator:
    amax = minmax_amax(zoo_model, activation_tensors(zoo_model), zoo_inputs)
    amax[BROKEN] /= 40
    x = np.random.default_rng(3).normal(0, 1, (256, 3, 8, 8)).astype(np.float32)
    return Evaluator(zoo_model, amax, EvalSet({"x": x}, None, batch_size=64))


@pytest.mark.parametrize("mode", ["loo", "oat"])
def test_ranking_puts_the_broken_tensor_first(evaluator: Evaluator, mode: str) -> None:
    ranking = rank(evaluator, mode=mode, progress=False)
    assert ranking.metric == "agreement" and ranking.fp32.metric == 100.0
    assert sorted(e.tensor for e in ranking.entries) == sorted(activation_tensors(evaluator.model))
    assert ranking.entries[0].tensor == BROKEN
    assert ranking.entries[0].delta > 5.0
    deltas = [e.delta for e in ranking.entries]
    assert deltas == sorted(deltas, reverse=True)


def test_keep_float_is_excluded_from_ranking(evaluator: Evaluator) -> None:
    ranking = rank(evaluator, keep_float=[BROKEN], progress=False)
    assert BROKEN not in [e.tensor for e in ranking.entries]
    assert ranking.int8.metric > rank(evaluator, progress=False).int8.metric


def test_fallback_stops_once_the_target_is_met(evaluator: Evaluator) -> None:
    ranking = rank(evaluator, progress=False)
    found = fallback(evaluator, ranking, target_drop=3.0, progress=False)
    assert found.steps[0].kept is None and found.steps[0].drop > 3.0
    assert found.keep_float[0] == BROKEN and found.met
    assert found.steps[-1].drop <= 3.0 and all(s.drop > 3.0 for s in found.steps[:-1])
    unreachable = fallback(evaluator, ranking, target_drop=-1.0, progress=False)  # INT8 can't beat FP32 by 1
    assert not unreachable.met and len(unreachable.steps) == len(ranking.entries) + 1


def test_labels_give_top1_and_scores_are_memoised(zoo_model: onnx.ModelProto, evaluator: Evaluator) -> None:
    x = dict(evaluator.data.inputs)
    labels = run(session(zoo_model), x)[0].argmax(-1)
    labels[:32] = (labels[:32] + 1) % 5  # FP32 is wrong on exactly 32 of 256
    labelled = Evaluator(zoo_model, evaluator.amax, EvalSet(x, labels, 64))
    assert labelled.metric_name == "top1" and labelled.fp32.metric == pytest.approx(100 * 224 / 256)
    assert labelled.score([BROKEN]) is labelled.score([BROKEN])


def test_reports(evaluator: Evaluator, tmp_path) -> None:
    ranking = rank(evaluator, progress=False)
    found = fallback(evaluator, ranking, target_drop=3.0, progress=False)
    table = ranking_table(ranking)
    assert table.splitlines()[2].split()[1] == BROKEN
    data = json.loads(json.dumps(ranking_json(ranking, found)))
    assert data["entries"][0]["tensor"] == BROKEN and data["fallback"]["keep_float"][0] == BROKEN
    ranking_plot(ranking, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evalset_rejects_mismatched_lengths() -> None:
    with pytest.raises(GeneratorError, match="same non-zero length"):
        EvalSet({"x": np.zeros((4, 2))}, np.zeros(3, np.int64))
