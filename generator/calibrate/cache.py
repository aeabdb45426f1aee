"""TensorRT calibration cache (text format of TensorRT <= 10): write ours, read anyone's.

Line 1 is `TRT-<version>-<algorithm>` (version = the NV_TENSORRT_VERSION integer, 10.3.0 -> 100300);
then one `<tensor name>: <8 lowercase hex digits>` line per tensor, the hex being the big-endian
IEEE-754 float32 bits of scale = amax / 127. TensorRT refuses a cache whose algorithm does not match
the calibrator class reading it; it ignores a cache from another version, so the version is written
from the installed TensorRT when there is one, else `DEFAULT_TRT_VERSION`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GeneratorError

DEFAULT_TRT_VERSION = 100300  # TensorRT 10.3.0: the 10.x line, the last with implicit INT8 calibration readers
ALGORITHMS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
QMAX = 127.0
_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
_ENTRY = re.compile(r"^(?P<name>.+): *(?P<hex>[0-9A-Fa-f]{1,8})$")


@dataclass(frozen=True)
class CalibrationCache:
    """A parsed cache: TensorRT version integer, algorithm, tensor name -> amax (= scale * 127)."""

    version: int
    algorithm: str
    amax: dict[str, float] = field(default_factory=dict)


def algorithm_for(method: str) -> str:
    """Cache header algorithm for a calibration method.

    TensorRT has entropy and minmax calibrator classes only; percentile and mse scales travel under
    the EntropyCalibration2 header (TensorRT uses cached scales as they are, whatever made them).
    """
    return "MinMaxCalibration" if method == "minmax" else "EntropyCalibration2"


def installed_trt_version() -> int:
    """NV_TENSORRT_VERSION of the installed `tensorrt` wheel (no import), else `DEFAULT_TRT_VERSION`."""
    from importlib import metadata

    for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu11"):
        try:
            parts = [int(p) for p in re.findall(r"\d+", metadata.version(dist))[:3]]
        except metadata.PackageNotFoundError:
            continue
        if len(parts) == 3:
            major, minor, patch = parts
            return major * 10000 + minor * 100 + patch if major >= 10 else major * 1000 + minor * 100 + patch
    return DEFAULT_TRT_VERSION


def scale_hex(amax: float) -> str:
    """'3c010204' for amax 1.0: float32 bits of amax/127, big-endian, 8 lowercase hex digits."""
    if not amax > 0:
        raise ValueError(f"amax must be positive, got {amax}")
    return struct.pack(">f", amax / QMAX).hex()


def hex_amax(text: str) -> float:
    """Inverse of `scale_hex`."""
    return float(struct.unpack(">f", bytes.fromhex(text.rjust(8, "0")))[0]) * QMAX


def format_cache(amax: Mapping[str, float], *, algorithm: str = "EntropyCalibration2", version: int = DEFAULT_TRT_VERSION) -> str:
    """The cache text, tensors in the given order."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    lines = [f"TRT-{version}-{algorithm}"]
    lines += [f"{name}: {scale_hex(value)}" for name, value in amax.items()]
    return "\n".join(lines) + "\n"


def parse_cache(text: str, *, where: str | Path = "calibration cache") -> CalibrationCache:
    """Parse cache text; `GeneratorError` on a malformed header or line, or a duplicate tensor."""
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    header = _HEADER.match(lines[0]) if lines else None
    if header is None or header.group(2) not in ALGORITHMS:
        first = lines[0][:60] if lines else "(empty file)"
        raise GeneratorError(
            f"not a TensorRT calibration cache: line 1 is {first!r}, expected 'TRT-<version>-<algorithm>' "
            f"with algorithm one of {', '.join(ALGORITHMS)}",
            where=where,
        )
    amax: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        entry = _ENTRY.match(line)
        if entry is None:
            raise GeneratorError(f"line {number}: expected '<tensor name>: <hex scale>', got {line[:60]!r}", where=where)
        name = entry.group("name").strip()
        if name in amax:
            raise GeneratorError(f"line {number}: tensor {name!r} appears twice", where=where)
        amax[name] = hex_amax(entry.group("hex"))
    return CalibrationCache(version=int(header.group(1)), algorithm=header.group(2), amax=amax)


def read_cache(path: str | Path) -> CalibrationCache:
    """Read a cache file (ours or one written by TensorRT, trtexec, ModelOpt, ...)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GeneratorError(f"cannot read the calibration cache ({exc.__class__.__name__})", where=path) from None
    return parse_cache(text, where=path)


def check_cache_matches(
    cache: CalibrationCache | Mapping[str, float],
    tensor_names: Iterable[str],
    *,
    model_tensors: Iterable[str] | None = None,
    where: str | Path = "calibration cache",
) -> None:
    """Refuse a cache that lacks a scale for any of `tensor_names` (the tensors that need one).

    TensorRT caches list every tensor of the network, so extra names are expected; but given
    `model_tensors` (every tensor name of the model), a name the model does not have at all means
    the cache was made for another model, and is refused too.
    """
    amax = cache.amax if isinstance(cache, CalibrationCache) else dict(cache)
    missing = [name for name in tensor_names if name not in amax]
    if missing:
        shown = ", ".join(repr(n) for n in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise GeneratorError(
            f"the cache has no scale for {len(missing)} tensor(s) of the model ({shown}): it was made for another "
            "model or placement; recalibrate (trgen calibrate --force)",
            where=where,
        )
    if model_tensors is not None:
        known = set(model_tensors)
        foreign = [name for name in amax if name not in known]
        if foreign:
            raise GeneratorError(
                f"the cache names {len(foreign)} tensor(s) the model does not have (e.g. {foreign[0]!r}): "
                "it was made for another model; recalibrate (trgen calibrate --force)",
                where=where,
            )
    bad = [name for name, value in amax.items() if not value > 0]
    if bad:
        raise GeneratorError(f"tensor {bad[0]!r} has a non-positive scale in the cache", where=where)
