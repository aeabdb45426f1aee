"""Results to JSON/Markdown/PNG: ratios, strict JSON, problems, and atomic replacement of the folder."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from generator.measure.report import precision_ratios, write_report
from generator.measure.results import BenchResult, LatencyStats, ServerSplit, WindowResult

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _latency(p99: float) -> LatencyStats:
    return LatencyStats(100, p99 / 2, p99 / 4, p99 / 2, p99 * 0.8, p99 * 0.9, p99, p99 * 1.2)


def make_result(variant: str, precision: str | None, level: float, rate: float, p99: float, **extra: Any) -> BenchResult:
    window = WindowResult(0, 1.0, int(rate), 0, rate, rate * 8, _latency(p99), None)
    values: dict[str, Any] = dict(
        model="mnist", variant=variant, precision=precision, target="python-onnxruntime", protocol="grpc",
        mode="concurrency", level=level, batch_size=8, shared_memory="none", stability_pct=10.0, stable=True,
        complete=True, requests_per_s=rate, infer_per_s=rate * 8, latency=_latency(p99),
        server=ServerSplit(100, 0, 50.0, 5.0, 300.0, 5.0, 20, 160), failed=0, failed_total=0,
        requests_total=1000, windows=(window, window, window), measured=(0, 1, 2),
        throughput_spread_pct=1.0, p99_spread_pct=2.0,
    )
    values.update(extra)
    return BenchResult(**values)


def sweep() -> list[BenchResult]:
    return [
        make_result("mnist_fp32", "fp32", 1, 100.0, 4.0),
        make_result("mnist_fp32", "fp32", 8, 400.0, 10.0),
        make_result("mnist_int8", "int8", 1, 150.0, 3.0),
        make_result("mnist_int8", "int8", 8, 700.0, 8.0),
    ]


def test_ratios_pair_int8_with_fp32_at_the_same_level() -> None:
    ratios = precision_ratios(sweep())
    assert [(r.level, r.candidate, r.baseline) for r in ratios] == [(1, "mnist_int8", "mnist_fp32"), (8, "mnist_int8", "mnist_fp32")]
    assert ratios[0].throughput_ratio == pytest.approx(1.5) and ratios[0].p99_ratio == pytest.approx(0.75)
    assert ratios[1].throughput_ratio == pytest.approx(1.75) and ratios[1].p99_ratio == pytest.approx(0.8)


def test_ratios_need_the_same_target_and_protocol() -> None:
    other = [sweep()[0], dataclasses.replace(sweep()[2], target="tensorrt"), dataclasses.replace(sweep()[2], protocol="http")]
    assert precision_ratios(other) == []


def test_result_problems_name_the_missed_threshold() -> None:
    good = sweep()[0]
    assert good and good.problems() == []
    unstable = dataclasses.replace(good, stable=False, throughput_spread_pct=14.2, p99_spread_pct=3.0)
    assert not unstable
    assert "14.2% in throughput" in unstable.problems()[0] and "limit 10%" in unstable.problems()[0]
    failed = dataclasses.replace(good, failed_total=3)
    assert failed.problems() == ["3 of 1000 requests failed"]
    cut = dataclasses.replace(good, complete=False, stable=False, note="interrupted")
    assert cut.problems() == ["incomplete (interrupted)"]


def test_to_dict_is_strict_json() -> None:
    result = dataclasses.replace(sweep()[0], latency=LatencyStats(0, *([math.nan] * 7)), server=None)
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)  # NaN would raise
    assert json.loads(text)["latency"]["p99_ms"] is None
    assert json.loads(json.dumps(sweep()[0].to_dict()))["server"]["avg_batch"] == 8.0


def comparison() -> Any:
    """A real ComparisonReport (plain dataclasses) as the compare stage returns it."""
    from generator.measure.agreement import OutputError
    from generator.measure.compare import Check, ComparisonReport, PairComparison

    pair = PairComparison(
        model="mnist", target="python-onnxruntime", reference="mnist_fp32", candidate="mnist_int8", samples=2000,
        labelled=2000, classification_output="logits", reference_top1=0.983, candidate_top1=0.981,
        reference_top5=0.999, candidate_top5=0.999, top1_drop_points=0.2, top1_agreement=0.996,
        outputs=(OutputError("logits", 20000, 0.31, 0.02, 0.9991, 0.97, math.inf),),
        checks=(Check("max_top1_drop", 0.2, 0.5, True, "top-1 drop 0.20 points <= 0.5"),),
    )
    return ComparisonReport(server="127.0.0.1:8001", comparisons=(pair,))


def test_report_folder_has_json_markdown_and_plots(tmp_path: Path) -> None:
    paths = write_report(tmp_path / "report", bench=sweep(), comparison=comparison())
    document = json.loads(paths.json.read_text())
    assert document["complete"] is True and len(document["bench"]) == 4
    assert document["ratios"][1]["throughput_ratio"] == pytest.approx(1.75)
    assert document["comparison"]["comparisons"][0]["top1_agreement"] == 0.996
    text = paths.markdown.read_text()
    assert "| mnist | mnist_fp32 | mnist_int8 | grpc | concurrency | 8 | 8 | 1.75 | 0.80 |" in text
    assert "| mnist_int8 | mnist_fp32 | 2000 | 98.30% | 98.10% | 0.20 | 99.90% | 99.90% | 99.60% | yes |" in text
    assert "| mnist_int8 | logits | 0.3100 | 0.0200 | 0.9991 | 0.9700 | inf |" in text
    assert "| mnist_int8 | max_top1_drop | 0.2000 | 0.5000 | yes | top-1 drop 0.20 points <= 0.5 |" in text
    assert {p.name for p in paths.plots} == {"throughput_vs_concurrency.png", "latency_vs_concurrency.png"}
    for plot in paths.plots:
        assert plot.read_bytes()[:8] == PNG_MAGIC and f"]({plot.name})" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folders left


def test_request_rate_results_get_their_table_and_plot(tmp_path: Path) -> None:
    rated = [make_result("m_fp32", "fp32", 200.0, 190.0, 5.0, mode="request_rate", achieved_rate=199.0, late=3)]
    paths = write_report(tmp_path / "r", bench=rated, comparison=None)
    assert [p.name for p in paths.plots] == ["request_rate.png"]
    assert "| m_fp32 | fp32 | grpc | 200 | 8 | 199.00 |" in paths.markdown.read_text()


def test_partial_results_are_flagged(tmp_path: Path) -> None:
    partial = sweep()[:1] + [dataclasses.replace(sweep()[1], complete=False, stable=False, note="server stopped answering")]
    paths = write_report(tmp_path / "r", bench=partial, comparison=None)
    assert json.loads(paths.json.read_text())["complete"] is False
    text = paths.markdown.read_text()
    assert "Partial results" in text and "incomplete (server stopped answering)" in text


def test_rewrite_replaces_the_folder_and_a_failure_keeps_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report(out, bench=sweep(), comparison=None)
    (out / "stale.png").write_bytes(b"a plot of an older run")  # trgen's own kind of file: replaced
    write_report(out, bench=sweep()[:2], comparison=None)
    assert not (out / "stale.png").exists()
    before = (out / "report.json").read_text()

    class Broken:
        def to_dict(self) -> dict[str, Any]:
            raise RuntimeError("comparison failed")

    with pytest.raises(RuntimeError):
        write_report(out, bench=sweep(), comparison=Broken())
    assert (out / "report.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
