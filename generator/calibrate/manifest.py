"""The calibration manifest (JSON beside the cache): what was calibrated, from what, and the result.

It records per-tensor amax, method, divergence / error and the guard's decision, and sha256 content
hashes of the model file, the data and the settings plus the tool version. When all of those match a
new run's, calibration is skipped and the result is read back from here.

Data hashes: an arrays file is hashed whole; an image folder as the sorted list of (relative path,
file hash); a data callable as its reference, its args and the source file of its module. Changes in
other code the callable uses are not seen: use `--force` after editing it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..fileio import sha256_file
from ..spec.data import ArraysSource, CallableSource, ImagesSource
from .calibrators import AmaxResult
from .histogram import Histogram

MANIFEST_NAME = "manifest.json"
FORMAT = 1


def sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def data_hashes(source: ArraysSource | ImagesSource | CallableSource) -> dict[str, str]:
    """Content hashes of what a data source reads: file/folder/callable -> sha256."""
    if isinstance(source, ArraysSource):
        return {str(source.path): sha256_file(Path(source.path))}
    if isinstance(source, ImagesSource):
        from ..data.images import list_images

        root = Path(source.path)
        listing = [[p.relative_to(root).as_posix(), sha256_file(p)] for p, _ in list_images(source)]
        return {str(root): sha256_json(listing)}
    import importlib.util

    module = source.callable.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    origin = Path(spec.origin) if spec is not None and spec.origin and Path(spec.origin).is_file() else None
    code = sha256_file(origin) if origin is not None else "unknown"
    return {source.callable: sha256_json({"args": source.args, "module_source": code})}


@dataclass(frozen=True)
class Fingerprint:
    """Everything that decides the result: equal fingerprints mean calibration can be skipped.

    Contents only, no paths: moving the project (or a CI checkout elsewhere) keeps results valid.
    `data_files` (path -> sha256) is recorded for people, `data_sha256` combines its hashes.
    """

    tool_version: str
    model_sha256: str
    data_sha256: str
    settings_sha256: str
    data_files: dict[str, str]


def fingerprint(model: Path, source: ArraysSource | ImagesSource | CallableSource, settings: Mapping[str, Any]) -> Fingerprint:
    """`settings` must not hold paths (see `Fingerprint`)."""
    files = data_hashes(source)
    return Fingerprint(
        tool_version=__version__,
        model_sha256=sha256_file(model),
        data_sha256=sha256_json(sorted(files.values())),
        settings_sha256=sha256_json(dict(settings)),
        data_files=files,
    )


def manifest_document(
    *,
    variant: str,
    model: Path,
    fp: Fingerprint,
    settings: Mapping[str, Any],
    results: Mapping[str, AmaxResult],
    histograms: Mapping[str, Histogram],
    samples: int,
    cache: Path,
    cache_header: str,
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict (tensors in placement order)."""
    tensors = {name: {**asdict(r), **_histogram_facts(histograms[name])} for name, r in results.items()}
    return {
        "format": FORMAT,
        "tool": "trgen",
        "tool_version": fp.tool_version,
        "variant": variant,
        "method": settings.get("method"),
        "settings": dict(settings),
        "hashes": {"model": fp.model_sha256, "data": fp.data_sha256, "settings": fp.settings_sha256},
        "model": {"path": str(model), "sha256": fp.model_sha256},
        "data": [{"path": path, "sha256": digest} for path, digest in fp.data_files.items()],
        "samples": samples,
        "cache": {"path": str(cache), "header": cache_header},
        "guarded": [name for name, r in results.items() if r.guarded],
        "tensors": tensors,
    }


def _histogram_facts(hist: Histogram) -> dict[str, float | int | None]:
    return {"min": _finite(hist.min), "max_signed": _finite(hist.max), "bins": len(hist.counts),
            "bin_width": hist.width, "values": hist.total}


def _finite(value: float) -> float | None:
    """JSON has no inf: a never-updated min/max is recorded as null."""
    return float(value) if math.isfinite(value) else None


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest, or None when it is missing or unreadable (then calibration simply runs again)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("format") == FORMAT else None


def matches(document: Mapping[str, Any], fp: Fingerprint) -> bool:
    """True when a manifest was made from the same tool version, model, data and settings."""
    hashes = document.get("hashes", {})
    return (
        document.get("tool_version") == fp.tool_version
        and hashes.get("model") == fp.model_sha256
        and hashes.get("data") == fp.data_sha256
        and hashes.get("settings") == fp.settings_sha256
    )


def amax_from(document: Mapping[str, Any]) -> dict[str, float] | None:
    """tensor -> amax read back from a manifest; None when it is damaged (then calibration reruns)."""
    try:
        amax = {str(name): float(entry["amax"]) for name, entry in document["tensors"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return amax if all(v > 0 for v in amax.values()) else None
