"""Error statistics and top-k counting against values known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from generator.measure.agreement import (
    ErrorAccumulator,
    TopKCounter,
    class_scores,
    cosine_per_sample,
    error_stats,
    sqnr_db,
    topk_hits,
)


def test_sqnr_of_signal_plus_noise_of_known_power() -> None:
    t = np.linspace(0, 8 * np.pi, 4096, endpoint=False)
    signal = (3.0 * np.sin(t)).reshape(64, 64)  # power 4.5 per element
    noise = np.random.default_rng(0).normal(size=signal.shape)
    noise *= math.sqrt(0.045 / np.mean(noise**2))  # exactly 1 % of the signal power: 20 dB
    stats = error_stats("y", signal, signal + noise)
    assert stats.sqnr_db == pytest.approx(20.0, abs=1e-9)
    assert stats.max_abs_error == pytest.approx(np.abs(noise).max())
    assert stats.mean_abs_error == pytest.approx(np.abs(noise).mean())
    assert stats.elements == 4096


def test_identical_outputs() -> None:
    x = np.random.default_rng(1).normal(size=(5, 7)).astype(np.float32)
    stats = error_stats("y", x, x.copy())
    assert stats.sqnr_db == math.inf
    assert stats.max_abs_error == 0.0 and stats.mean_abs_error == 0.0
    assert stats.cosine == pytest.approx(1.0) and stats.min_cosine == pytest.approx(1.0)


def test_sqnr_edge_cases() -> None:
    assert sqnr_db(1.0, 0.0) == math.inf
    assert sqnr_db(0.0, 1.0) == -math.inf
    assert sqnr_db(1000.0, 1.0) == pytest.approx(30.0)


def test_cosine_known_angles() -> None:
    reference = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    candidate = np.array([[0.0, 3.0], [2.0, 2.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    cos = cosine_per_sample(reference, candidate)
    np.testing.assert_allclose(cos, [0.0, 1.0, -1.0, 1.0, 0.0], atol=1e-12)
    stats = error_stats("y", reference, candidate)
    assert stats.cosine == pytest.approx(np.mean([0.0, 1.0, -1.0, 1.0, 0.0]))
    assert stats.min_cosine == pytest.approx(-1.0)


def test_streaming_equals_whole_array() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(50, 3, 4))
    candidate = reference + rng.normal(scale=0.1, size=reference.shape)
    accumulator = ErrorAccumulator("y")
    for start in range(0, 50, 7):
        accumulator.update(reference[start:start + 7], candidate[start:start + 7])
    streamed, whole = accumulator.result(), error_stats("y", reference, candidate)
    for field in ("elements", "max_abs_error", "min_cosine"):
        assert getattr(streamed, field) == getattr(whole, field)
    for field in ("mean_abs_error", "cosine", "sqnr_db"):  # sums in another order
        assert getattr(streamed, field) == pytest.approx(getattr(whole, field), rel=1e-12)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        ErrorAccumulator("y").update(np.zeros((2, 3)), np.zeros((3, 2)))


def test_topk_counts() -> None:
    scores = np.array([
        [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],   # top1 0
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],   # top1 5, top5 {5,4,3,2,1}
        [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],   # top1 0, top5 {0..4}
    ])
    labels = np.array([0, 0, 5])
    assert topk_hits(scores, labels, 1) == 1
    assert topk_hits(scores, labels, 5) == 1  # row 1: 0 is sixth; row 2: 5 is sixth


def test_topk_counter_accuracy_and_agreement() -> None:
    reference = np.eye(6)[[0, 1, 2, 3]]
    candidate = np.eye(6)[[0, 1, 4, 3]]
    counter = TopKCounter()
    counter.update(reference[:2], candidate[:2], np.array([0, 5]))
    counter.update(reference[2:], candidate[2:], np.array([2, 3]))
    assert counter.agreement() == pytest.approx(0.75)
    accuracy = counter.accuracy()
    assert accuracy["reference_top1"] == pytest.approx(0.75)
    assert accuracy["candidate_top1"] == pytest.approx(0.5)
    unlabelled = TopKCounter()
    unlabelled.update(reference, candidate, None)
    assert unlabelled.accuracy()["reference_top1"] is None and unlabelled.agreement() == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((4, 10), (4, 10)), ((4, 10, 1, 1), (4, 10)), ((4, 1, 10), (4, 10)), ((4, 3, 5), None), ((4,), None), ((4, 1), None)],
)
def test_class_scores_shapes(shape: tuple[int, ...], expected: tuple[int, ...] | None) -> None:
    scores = class_scores(np.zeros(shape))
    assert (scores.shape if scores is not None else None) == expected
