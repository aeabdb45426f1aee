"""Turn what Triton says about a failure (repository index, server log) into one line for the user.

Clients only ever hear "failed to load" or "failed to poll from model repository"; the reason is in
the repository index (`POST /v2/repository/index`, field `reason`) or only in the server log (config
parse errors, port collisions). These helpers pick it out.
"""

from __future__ import annotations

import re
from pathlib import Path

_PREFIXES = ("Internal: ", "Invalid argument: ", "Unavailable - ", "Internal - ", "TritonModelException: ")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"\s*$')
_PROTO_ERROR = re.compile(r"Error parsing text-format inference\.ModelConfig: (.*)$")
_PORT_IN_USE = re.compile(r"failed to start (\w+) service: .*?(\d+\.\d+\.\d+\.\d+:\d+)'? already in use", re.IGNORECASE)


def first_line(reason: str) -> str:
    """Triton reasons carry a Python traceback after a blank line and nested status prefixes."""
    text = reason.replace("\\n", "\n").strip().split("\n\n")[0].strip()
    text = " ".join(text.split())
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if text.startswith(prefix):
                text, changed = text[len(prefix):], True
    return text.rstrip(";").strip()


def read_log(path: Path | None, limit: int = 2_000_000) -> str:
    """The log's text (the last `limit` characters), '' when there is none."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _message(line: str) -> str:
    """The quoted message of a Triton log line (`E1126 ... file.cc:12] "message"`), else the line."""
    match = _QUOTED.search(line)
    return match.group(1) if match else line.split("] ", 1)[-1]


def model_failure_from_log(log: str, model: str) -> str | None:
    """Why `model` failed to load, as the server log tells it; None when the log does not say."""
    lines = log.splitlines()
    pattern_load = re.compile(rf"failed to load '{re.escape(model)}' version \d+: (.*)")
    pattern_poll = re.compile(rf"Poll failed for model directory '{re.escape(model)}': (.*)")
    for index, line in enumerate(lines):
        message = _message(line)
        match = pattern_load.search(message)
        if match:
            return first_line(match.group(1))
        match = pattern_poll.search(message)
        if match:
            detail = first_line(match.group(1))
            previous = lines[index - 1] if index else ""
            proto = _PROTO_ERROR.search(previous)
            return f"{detail}: {proto.group(1).strip()}" if proto else detail
    return None


def port_in_use(log: str) -> str | None:
    """'GRPC 127.0.0.1:8001' when the server could not bind a port, else None."""
    match = _PORT_IN_USE.search(log)
    return f"{match.group(1)} {match.group(2)}" if match else None


def last_error(log: str) -> str | None:
    """The last error line of the log (E... lines, 'error:' lines), as one line."""
    for line in reversed(log.splitlines()):
        stripped = line.strip()
        if re.match(r"^E\d{4} ", stripped) or stripped.lower().startswith("error:"):
            if "CudaDriverHelper" in stripped or "NVML" in stripped or "DCGM" in stripped:
                continue  # CPU-only machines always log these; they are not the reason
            return first_line(_message(stripped))
    return None
