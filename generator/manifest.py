"""Build manifests: what an output was made from, so a build reruns only when something changed.

A manifest sits beside its output as `<output>.manifest.json`. An output is up to date when it (and
its companions) exist and the recorded manifest equals the one the current build would write, apart
from timing fields. `describe_change` names the first thing that differs, for the log.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .fileio import atomic_write_text, sha256_file

FORMAT = "trgen-build-manifest"
VERSION = 1
_VOLATILE = ("built_at", "build_seconds", "outcome")  # what the build found, not what it was made from


def manifest_path(output: Path) -> Path:
    return output.with_name(output.name + ".manifest.json")


def new_manifest(variant: str, kind: str, **fields: Any) -> dict[str, Any]:
    """The stable part of a manifest, normalised through JSON (tuples become lists, as when read back)."""
    data = {"format": FORMAT, "version": VERSION, "trgen": __version__, "variant": variant, "kind": kind, **fields}
    return json.loads(json.dumps(data))  # type: ignore[no-any-return]


def file_entry(path: Path | None) -> dict[str, str] | None:
    """A build input: its path and content hash (the hash decides; the path is for people)."""
    return None if path is None else {"path": str(path), "sha256": sha256_file(path)}


def recorded_manifest(output: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(manifest_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_up_to_date(output: Path, expected: dict[str, Any], companions: tuple[Path, ...] = ()) -> bool:
    if not output.is_file() or not all(p.is_file() for p in companions):
        return False
    recorded = recorded_manifest(output)
    return recorded is not None and _stable(recorded) == _stable(expected)


def describe_change(output: Path, expected: dict[str, Any]) -> str:
    """Why `output` is rebuilt, in a few words."""
    if not output.is_file():
        return "not built yet"
    recorded = recorded_manifest(output)
    if recorded is None:
        return "no readable manifest"
    for key, value in _stable(expected).items():
        if recorded.get(key) != value:
            return f"{key} changed"
    return "companion file missing"


def write_manifest(
    output: Path, manifest: dict[str, Any], *, seconds: float | None = None, outcome: dict[str, Any] | None = None
) -> Path:
    """Write last, after the output itself: a manifest only ever describes a complete output.

    `outcome`: what the build found (e.g. layers per precision); recorded, not compared.
    """
    data = dict(manifest, built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if seconds is not None:
        data["build_seconds"] = round(seconds, 3)
    if outcome is not None:
        data["outcome"] = outcome
    path = manifest_path(output)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def _stable(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in _VOLATILE}
