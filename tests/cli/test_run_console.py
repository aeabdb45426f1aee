"""`trgen run`'s console lines: INT8/FP32 ratios, and a word when a level never settled."""

from __future__ import annotations

import dataclasses

from generator.cli.run_cmd import ratio_lines
from generator.measure.report import precision_ratios
from tests.measure.test_bench_report import make_result, sweep


def test_ratio_lines_say_when_a_level_was_unstable() -> None:
    results = sweep()
    results[3] = dataclasses.replace(results[3], stable=False, throughput_spread_pct=25.0)
    lines = ratio_lines(precision_ratios(results))
    assert lines[0] == "mnist_int8 vs mnist_fp32, concurrency 1: throughput x1.50, p99 latency x0.75"
    assert lines[1].startswith("mnist_int8 vs mnist_fp32, concurrency 8: throughput x1.75, p99 latency x0.80 (unstable: "
                               "mnist_int8 did not settle")


def test_a_cut_short_baseline_is_named_too() -> None:
    base = dataclasses.replace(make_result("mnist_fp32", "fp32", 1, 100.0, 4.0), complete=False, stable=False)
    lines = ratio_lines(precision_ratios([base, make_result("mnist_int8", "int8", 1, 150.0, 3.0)]))
    assert "(unstable: mnist_fp32 did not settle" in lines[0]
