"""`trgen validate`: check a Triton model repository offline, every problem as `file:line: message`.

Works on any repository (not only ones trgen wrote): each sub-folder is a model, its config.pbtxt is
parsed with Triton's own schema (tritonclient's model_config_pb2), every model is parsed first (the
ensemble rules look at their members), then every rule in `rules` runs and all findings are
reported, not just the first. `strict` mirrors `tritonserver --disable-auto-complete-config`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import GeneratorError
from .locator import Locator
from .problems import Problem
from .rules import RULES
from .schema import parse
from .subject import ModelUnderCheck

CONFIG = "config.pbtxt"


def validate_repository(path: str | Path, *, strict: bool = False) -> list[Problem]:
    """All problems of the repository at `path`, warnings included (no errors: Triton should load every model).

    Raises GeneratorError when `path` is not a readable folder.
    """
    root = Path(path)
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        raise GeneratorError(f"cannot read the model repository ({exc.__class__.__name__})", where=root) from None
    problems: list[Problem] = []
    repo: dict[str, ModelUnderCheck | None] = {}
    texts: dict[str, str] = {}
    for folder in folders:
        model, text, problem = _load(folder, strict)
        repo[folder.name] = model
        texts[folder.name] = text
        if problem is not None:
            problems.append(problem)
    for name, model in repo.items():
        if model is not None:
            model.repo = repo
            problems.extend(_check(model, texts[name]))
    return problems


def _load(folder: Path, strict: bool) -> tuple[ModelUnderCheck | None, str, Problem | None]:
    """The parsed model (None if its config.pbtxt does not parse), its text, and that parse problem."""
    from google.protobuf import text_format

    config_path = folder / CONFIG
    file = str(config_path)
    if config_path.exists() and not config_path.is_file():
        return None, "", Problem(file, 1, f"{CONFIG} is not a file")
    if not config_path.is_file():
        from .schema import pb2

        return ModelUnderCheck(folder, pb2().ModelConfig(), strict=strict, has_config=False), "", None
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, "", Problem(file, 1, f"unreadable ({exc.__class__.__name__})")
    try:
        config = parse(text)
    except text_format.ParseError as exc:
        message = str(exc).split(" : ", 1)[-1]  # "3:5 : message": the line goes into file:line
        column = f" (column {exc.GetColumn()})" if exc.GetColumn() else ""
        return None, text, Problem(file, exc.GetLine() or 1, f"{message}{column}")
    return ModelUnderCheck(folder, config, strict=strict), text, None


def _check(model: ModelUnderCheck, text: str) -> list[Problem]:
    file = str(model.dir / CONFIG)
    locator = Locator(text)
    return [
        Problem(file, locator.line(f.path), f.message, f.severity) for rule in RULES.values() for f in rule(model)
    ]
