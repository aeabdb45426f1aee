"""The report directory: report.json + report.md + PNG plots, written atomically.

    write_report(out_dir, bench=results, comparison=report_or_None) -> ReportPaths

Everything is written into a temporary folder beside `out_dir` and swapped in at the end, so a
reader never sees half a report. INT8 (or FP16) results are paired with the FP32 variant of the same
model and target at the same load level to give throughput and p99 ratios.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import GeneratorError
from ..fileio import check_owned, staged_dir
from .results import BenchResult, _clean


class Reportable(Protocol):
    """What the report needs of a ComparisonReport (generator.measure.compare)."""

    def to_dict(self) -> Mapping[str, Any]: ...


REPORT_MARKER = ".trgen-report"
"""Written in every report folder: the proof that trgen made it, so it may be replaced whole."""


def _report_file(path: Path) -> bool:
    """What a report folder holds: report.json, report.md and the PNG plots (nothing else)."""
    return path.is_file() and not path.is_symlink() and (path.name in {"report.json", "report.md"} or path.suffix == ".png")


def check_report_dir(out_dir: Path) -> None:
    """Refuse a report folder that holds anything trgen does not write (before any load starts)."""
    check_owned(out_dir, marker=REPORT_MARKER, owned=_report_file, what="the report folder", flag="report folder")


@dataclass(frozen=True)
class ReportPaths:
    directory: Path
    json: Path
    markdown: Path
    plots: tuple[Path, ...]


@dataclass(frozen=True)
class PrecisionRatio:
    """A lower-precision variant against its FP32 sibling at one load level (ratio > 1: faster)."""

    model: str
    target: str | None
    baseline: str
    candidate: str
    precision: str
    protocol: str
    mode: str
    level: float
    batch_size: int
    throughput_ratio: float  # candidate infer/s over baseline infer/s
    p99_ratio: float  # candidate p99 over baseline p99 (< 1: lower tail latency)
    unstable: tuple[str, ...] = ()  # the variants whose level never settled or was cut short

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))  # type: ignore[no-any-return]


def precision_ratios(results: Sequence[BenchResult]) -> list[PrecisionRatio]:
    """Pair every non-FP32 result with the FP32 result of the same model, target and load."""

    def key(r: BenchResult) -> tuple[Any, ...]:
        return (r.model, r.target, r.protocol, r.mode, r.level, r.batch_size, r.shared_memory)

    baselines = {key(r): r for r in results if r.precision == "fp32"}
    ratios = []
    for result in results:
        base = baselines.get(key(result))
        if result.precision in (None, "fp32") or base is None:
            continue
        ratios.append(
            PrecisionRatio(
                model=result.model, target=result.target, baseline=base.variant, candidate=result.variant,
                precision=result.precision or "", protocol=result.protocol, mode=result.mode, level=result.level,
                batch_size=result.batch_size,
                throughput_ratio=_ratio(result.infer_per_s, base.infer_per_s),
                p99_ratio=_ratio(result.latency.p99_ms, base.latency.p99_ms),
                unstable=tuple(r.variant for r in (base, result) if not (r.stable and r.complete)),
            )
        )
    return ratios


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def write_report(
    out_dir: str | Path, *, bench: Sequence[BenchResult], comparison: Reportable | None = None
) -> ReportPaths:
    """Write report.json, report.md and the plots into `out_dir` (replaced as a whole).

    `out_dir` is replaced only when trgen owns it (see `check_report_dir`): a folder with the user's
    notes is refused, never wiped.
    """
    from . import plots

    out_dir = Path(out_dir)
    check_report_dir(out_dir)
    try:
        with staged_dir(out_dir, marker=REPORT_MARKER) as tmp:
            ratios = precision_ratios(bench)
            comparison_dict = dict(comparison.to_dict()) if comparison is not None else None
            plot_paths = [*plots.plot_concurrency(bench, tmp), *plots.plot_request_rate(bench, tmp)]
            document = {
                "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "complete": all(r.complete for r in bench),
                "bench": [r.to_dict() for r in bench],
                "ratios": [r.to_dict() for r in ratios],
                "comparison": _clean(comparison_dict),
                "plots": [p.name for p in plot_paths],
            }
            (tmp / "report.json").write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
            (tmp / "report.md").write_text(render_markdown(bench, ratios, comparison_dict, [p.name for p in plot_paths]))
    except OSError as exc:
        raise GeneratorError(f"cannot write the report folder: {exc.strerror}", where=out_dir) from None
    return ReportPaths(
        directory=out_dir,
        json=out_dir / "report.json",
        markdown=out_dir / "report.md",
        plots=tuple(out_dir / p.name for p in plot_paths),
    )


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v, digits) for v in row) + " |" for row in rows]
    return lines + [""]


def _section(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A '## title' and its table, or nothing when there are no rows."""
    return [f"## {title}", "", *_table(header, rows)] if rows else []


def render_markdown(
    bench: Sequence[BenchResult],
    ratios: Sequence[PrecisionRatio],
    comparison: Mapping[str, Any] | None,
    plot_names: Sequence[str],
) -> str:
    lines = ["# trgen report", ""]
    if bench and not all(r.complete for r in bench):
        lines += ["**Partial results: the benchmark was cut short (see notes below).**", ""]
    lines += _section(
        "INT8 vs FP32",
        ["model", "baseline", "candidate", "protocol", "mode", "level", "batch", "throughput ×", "p99 ×"],
        [[r.model, r.baseline, r.candidate, r.protocol, r.mode, f"{r.level:g}", r.batch_size, r.throughput_ratio,
          r.p99_ratio] for r in ratios],
    )
    lines += _section(
        "Throughput and latency (concurrency sweep)",
        ["variant", "precision", "protocol", "concurrency", "batch", "req/s", "infer/s", "p50 ms", "p90 ms",
         "p95 ms", "p99 ms", "failed", "stable"],
        [_perf_row(r) for r in bench if r.mode == "concurrency"],
    )
    lines += _section(
        "Request-rate mode (open loop)",
        ["variant", "precision", "protocol", "offered/s", "batch", "achieved/s", "infer/s", "p50 ms", "p99 ms",
         "late", "dropped", "failed", "stable"],
        [[r.variant, r.precision, r.protocol, f"{r.level:g}", r.batch_size, r.achieved_rate, r.infer_per_s,
          r.latency.p50_ms, r.latency.p99_ms, r.late, r.dropped, r.failed_total, r.stable]
         for r in bench if r.mode == "request_rate"],
    )
    lines += _section(
        "Server-side split (per request, µs, from Triton statistics)",
        ["variant", "mode", "level", "queue", "compute input", "compute infer", "compute output", "samples/execution"],
        [[r.variant, r.mode, f"{r.level:g}", *(_split(r))] for r in bench],
    )
    for name in plot_names:
        lines += [f"![{name}]({name})", ""]
    problems = [(r.label, p) for r in bench for p in r.problems()]
    errors = [(r.label, message, count) for r in bench for message, count in r.errors.items()]
    if problems or errors:
        lines += ["## Notes", ""]
        lines += [f"- {label}: {problem}" for label, problem in problems]
        lines += [f"- {label}: {count}× {message}" for label, message, count in errors]
        lines += [""]
    if comparison is not None:
        lines += ["## Accuracy (INT8 vs FP32)", "", *_accuracy_tables(comparison)]
    return "\n".join(lines).rstrip() + "\n"


def _perf_row(r: BenchResult) -> list[Any]:
    lat = r.latency
    return [r.variant, r.precision, r.protocol, int(r.level), r.batch_size, r.requests_per_s, r.infer_per_s,
            lat.p50_ms, lat.p90_ms, lat.p95_ms, lat.p99_ms, r.failed_total, r.stable]


def _split(r: BenchResult) -> list[Any]:
    s = r.server
    if s is None:
        return [None] * 5
    return [s.queue_us, s.compute_input_us, s.compute_infer_us, s.compute_output_us, s.avg_batch]


def _pct(value: Any) -> Any:
    return f"{value:.2%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _accuracy_tables(data: Mapping[str, Any]) -> list[str]:
    """ComparisonReport.to_dict(): accuracy, per-output error and tolerance tables."""
    pairs = data.get("comparisons")
    if not isinstance(pairs, list) or not all(isinstance(p, Mapping) for p in pairs):
        return _mapping_tables(data)  # an unknown shape: show it generically rather than not at all
    verdict = "all tolerances held" if data.get("passed") else "**a tolerance was missed**"
    lines = [f"Server {data.get('server', '?')}: {verdict}.", ""]
    lines += _table(
        ["candidate", "reference", "samples", "top-1 FP32", "top-1 INT8", "drop (points)", "top-5 FP32",
         "top-5 INT8", "top-1 agreement", "passed"],
        [[p.get("candidate"), p.get("reference"), p.get("samples"), _pct(p.get("reference_top1")),
          _pct(p.get("candidate_top1")), p.get("top1_drop_points"), _pct(p.get("reference_top5")),
          _pct(p.get("candidate_top5")), _pct(p.get("top1_agreement")), p.get("passed")] for p in pairs],
    )
    outputs = [(p.get("candidate"), o) for p in pairs for o in p.get("outputs", [])]
    if outputs:
        lines += _table(
            ["candidate", "output", "max abs err", "mean abs err", "cosine", "worst cosine", "SQNR dB"],
            [[c, o.get("name"), o.get("max_abs_error"), o.get("mean_abs_error"), o.get("cosine"),
              o.get("min_cosine"), o.get("sqnr_db")] for c, o in outputs],
            digits=4,
        )
    checks = [(p.get("candidate"), c) for p in pairs for c in p.get("checks", [])]
    if checks:
        lines += _table(
            ["candidate", "tolerance", "value", "limit", "passed", "detail"],
            [[name, c.get("name"), c.get("value"), c.get("limit"), c.get("passed"), c.get("detail")] for name, c in checks],
            digits=4,
        )
    notes = [f"{p.get('candidate')}: {n}" for p in pairs for n in p.get("notes", [])]
    notes += [f"skipped: {n}" for n in data.get("skipped", [])]
    return lines + [f"- {n}" for n in notes] + ([""] if notes else [])


def _flat(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> dotted keys; lists of scalars joined; other lists left out (own tables)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out.update(_flat(item, f"{name}."))
        elif isinstance(item, (list, tuple)):
            if all(not isinstance(v, (Mapping, list, tuple)) for v in item):
                out[name] = ", ".join(_fmt(v, 4) for v in item)
        else:
            out[name] = item
    return out


def _mapping_tables(data: Mapping[str, Any]) -> list[str]:
    """A ComparisonReport dict as tables: its scalar fields, then one table per list of records."""
    lines = _table(["field", "value"], [[k, v] for k, v in _flat(data).items()], digits=4)
    for key, item in data.items():
        if isinstance(item, (list, tuple)) and item and all(isinstance(v, Mapping) for v in item):
            rows = [_flat(v) for v in item]
            header = list(dict.fromkeys(k for row in rows for k in row))
            lines += [f"### {key}", ""]
            lines += _table(header, [[row.get(h) for h in header] for row in rows], digits=4)
    return lines
