"""Write the model repository atomically: build it whole in a temp folder beside the target, validate
it, then swap it in. On any failure the old repository is untouched and the temp folder is removed.

The repository is owned by trgen and replaced whole: folders of models no longer in the spec go away.
To protect user data, an existing target is only replaced when it is empty or holds nothing but what
trgen writes: its marker file and model folders (a config.pbtxt, labels, and numeric version folders
holding model files); anything else (a `photos/2024/a.txt`) is refused before any work starts.
Rendering the same inputs twice gives byte-identical files: no timestamps, sorted maps, files copied
byte for byte.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import Artifact
from ..errors import GeneratorError, ProblemList
from ..fileio import check_owned, staged_dir
from ..spec import ResolvedVariant, Spec
from .context import LABELS_FILE, ONNX_FILE, PLAN_FILE, build_context, cc_model_files
from ..signature import engine_signature_json, sidecar_path
from .template import render_config_text, render_python_model
from .validate import CONFIG, validate_repository


@dataclass(frozen=True)
class Repository:
    """A rendered model repository: its folder and the model (variant) names in it, in spec order."""

    path: Path
    models: tuple[str, ...]


FileSource = Path | str  # a file to copy, or text to write


def render_repository(spec: Spec, artifacts: Mapping[str, Artifact], repository: Path | None = None) -> Repository:
    """Render every variant of `spec` into `repository` (default: spec.repository), replacing it."""
    target = Path(repository if repository is not None else spec.repository)
    plans = {rv.name: model_files(rv, _artifact(rv, artifacts)) for rv in spec.resolved()}
    check_repository(target)
    try:
        with staged_dir(target, marker=REPOSITORY_MARKER) as tmp:
            for name, files in plans.items():
                _write_model(tmp / name, files)
            _raise_load_problems(tmp, target)
    except OSError as exc:  # disk full, permissions: nothing was replaced
        raise GeneratorError(f"cannot write the repository ({exc.__class__.__name__}: {exc})", where=target) from None
    return Repository(path=target, models=tuple(plans))


def model_files(rv: ResolvedVariant, artifact: Artifact) -> dict[str, FileSource]:
    """Every file of one model folder (relative path -> source), config rendered and checked."""
    context = build_context(rv, artifact)
    version = str(rv.variant.version)
    files: dict[str, FileSource] = {CONFIG: render_config_text(context)}
    if rv.model.labels is not None:
        files[LABELS_FILE] = rv.model.labels
    platform = context["platform"]
    files[f"{version}/{PLAN_FILE if platform == 'tensorrt_plan' else ONNX_FILE}"] = artifact.model_file
    if platform == "python":
        files[f"{version}/model.py"] = render_python_model(rv.name, ONNX_FILE)
    if platform == "tensorrt_plan":
        files[f"{version}/{sidecar_path(Path(PLAN_FILE))}"] = engine_signature_json(artifact.signature)
        for _, filename, source in cc_model_files(artifact):
            files[f"{version}/{filename}"] = source
    return files


def _artifact(rv: ResolvedVariant, artifacts: Mapping[str, Artifact]) -> Artifact:
    try:
        return artifacts[rv.name]
    except KeyError:
        raise GeneratorError(f"no built model for variant {rv.name!r}: run `trgen build` first") from None


def _raise_load_problems(folder: Path, target: Path) -> None:
    """Every problem (one line each) that would stop Triton loading the repository written in `folder`."""
    problems = [p for p in validate_repository(folder) if p.is_error]
    if problems:
        lines = [GeneratorError("the rendered repository would not load: " + str(p).replace(str(folder), str(target)))
                 for p in problems]
        raise lines[0] if len(lines) == 1 else ProblemList(lines)


def dry_render(plans: Mapping[str, Mapping[str, FileSource]], target: Path) -> None:
    """Write `plans` into a private temporary folder (model files linked, not copied) and validate it.

    The front door's check that what `render` would write loads in Triton, without writing near `target`.
    """
    with tempfile.TemporaryDirectory(prefix="trgen-check-") as tmp:
        for name, files in plans.items():
            _write_model(Path(tmp) / name, files, link=True)
        _raise_load_problems(Path(tmp), target)


def _write_model(folder: Path, files: Mapping[str, FileSource], *, link: bool = False) -> None:
    for relative, source in sorted(files.items()):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, str):
            path.write_bytes(source.encode("utf-8"))
            continue
        try:
            if link:
                path.symlink_to(Path(source).resolve())
                continue
            shutil.copyfile(source, path)
        except OSError as exc:
            raise GeneratorError(
                f"cannot copy into the repository ({exc.__class__.__name__}): rebuild with `trgen build`", where=source
            ) from None


REPOSITORY_MARKER = ".trgen-repository"
"""Written at render time in the repository root (Triton ignores files there)."""

_MODEL_FOLDER_FILES = {CONFIG, LABELS_FILE}


def _is_version_file(path: Path) -> bool:
    """A file trgen writes in a version folder: model.onnx, model.plan (+ sidecar, per-GPU plans), model.py."""
    return path.is_file() and not path.is_symlink() and path.name.startswith("model")


def _is_version_folder(path: Path) -> bool:
    if not (path.is_dir() and not path.is_symlink() and path.name.isdigit()):
        return False
    # __pycache__: the python backend compiles model.py in place
    return all(_is_version_file(p) or (p.name == "__pycache__" and p.is_dir()) for p in path.iterdir())


def _is_model_folder(path: Path) -> bool:
    """A folder trgen rendered: config.pbtxt, optional labels, version folders with model files only."""
    if not path.is_dir() or path.is_symlink() or not (path / CONFIG).is_file():
        return False
    return all(p.name in _MODEL_FOLDER_FILES and p.is_file() or _is_version_folder(p) for p in path.iterdir())


def check_repository(target: Path) -> None:
    """Refuse to replace a folder that holds anything trgen did not write (called before any work)."""
    check_owned(target, marker=REPOSITORY_MARKER, owned=_is_model_folder, what="the repository",
                flag="`repository` (or --repository)")
