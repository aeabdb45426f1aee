"""`trgen validate`: check a Triton model repository offline, every problem as `file:line: message`.

Works on any repository (not only ones trgen wrote): each sub-folder is a model, its config.pbtxt is
parsed with Triton's own schema (tritonclient's model_config_pb2), then every rule in
`rules_config` and `rules_files` runs and all findings are reported, not just the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import GeneratorError
from .locator import Locator
from .problems import Finding, Problem
from .rules_config import RULES as CONFIG_RULES
from .rules_files import RULES as FILE_RULES
from .subject import DEFAULT_FILES, ModelUnderCheck
from .schema import parse as parse_config

CONFIG = "config.pbtxt"
RULES: dict[str, Callable[[ModelUnderCheck], Iterator[Finding]]] = {**CONFIG_RULES, **FILE_RULES}


def validate_repository(path: str | Path) -> list[Problem]:
    """All problems of the repository at `path` (empty: Triton should load every model).

    Raises GeneratorError when `path` is not a readable folder.
    """
    root = Path(path)
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        raise GeneratorError(f"cannot read the model repository ({exc.__class__.__name__})", where=root) from None
    names = frozenset(p.name for p in folders)
    problems: list[Problem] = []
    for folder in folders:
        problems.extend(validate_model(folder, names))
    return problems


def validate_model(folder: Path, repo_models: frozenset[str]) -> list[Problem]:
    """Problems of one model folder; `repo_models` are the folder names ensembles may refer to."""
    config_path = folder / CONFIG
    file = str(config_path)
    if not config_path.is_file():
        if _auto_completable(folder):
            return []  # Triton generates the config of ONNX / TensorRT / PyTorch models itself
        return [Problem(file, 1, f"missing: every model folder needs a {CONFIG} (or remove the folder {folder.name}/)")]
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(file, 1, f"unreadable ({exc.__class__.__name__})")]
    from google.protobuf import text_format

    try:
        config = parse_config(text)
    except text_format.ParseError as exc:
        message = str(exc).split(" : ", 1)[-1]  # "3:5 : message": the line goes into file:line
        column = f" (column {exc.GetColumn()})" if exc.GetColumn() else ""
        return [Problem(file, exc.GetLine() or 1, f"{message}{column}")]
    locator = Locator(text)
    model = ModelUnderCheck(dir=folder, config=config, repo_models=repo_models)
    return [Problem(file, locator.line(f.path), f.message) for rule in RULES.values() for f in rule(model)]


def _auto_completable(folder: Path) -> bool:
    files = set(DEFAULT_FILES.values()) - {"model.py"}
    return any((version / name).exists() for version in folder.iterdir() if version.is_dir() for name in files)
