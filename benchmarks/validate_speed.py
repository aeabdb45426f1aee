"""How long `trgen validate` takes on a one-model repository, and where the time goes.

Runs each variant as a fresh process (imports are the cost being measured), takes the median of
`--runs` wall times, prints a table and writes benchmarks/results/validate_speed.json:

    .venv/bin/python benchmarks/validate_speed.py [--repository model_repository] [--runs 7]

Rows: the interpreter alone; the validate command alone (render_cmds + generator.validation, what
this command costs by itself); the whole `trgen validate` CLI (adds every command group's
registration imports); validation in-process once imports are warm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "validate_speed.json"
# measured before issue 10 (commit 7ccc496, same machine): `time .venv/bin/trgen validate model_repository`
BEFORE_S = 0.857


def _wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repository", default="model_repository")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    repo, py = args.repository, sys.executable
    command_only = (
        "import argparse; from generator.cli import render_cmds; p = argparse.ArgumentParser(); "
        f"render_cmds.register(p.add_subparsers()); a = p.parse_args(['validate', {repo!r}]); "
        "raise SystemExit(a.func(a))"
    )
    trgen = str(Path(py).with_name("trgen"))
    rows = {
        "python -c pass": _wall([py, "-c", "pass"], args.runs),
        "validate command alone": _wall([py, "-c", command_only], args.runs),
        "trgen validate (whole CLI)": _wall([trgen, "validate", repo], args.runs),
    }
    from generator.validation import validate_repository

    validate_repository(repo)  # warm imports
    start = time.perf_counter()
    validate_repository(repo)
    rows["validate_repository in-process (warm)"] = time.perf_counter() - start
    width = max(len(k) for k in rows)
    print(f"{'what':<{width}}  wall s (median of {args.runs})")
    for name, seconds in rows.items():
        print(f"{name:<{width}}  {seconds:.3f}")
    print(f"{'before issue 10: trgen validate':<{width}}  {BEFORE_S:.3f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = {"repository": repo, "runs": args.runs, "wall_s": {k: round(v, 4) for k, v in rows.items()},
            "before_issue_10_trgen_validate_s": BEFORE_S, "target_s": 0.2}
    RESULTS.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
