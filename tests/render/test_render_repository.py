"""Writing the repository: layout per platform, validation of what was written, byte-identical
re-renders, atomic replacement (a failure mid-write leaves the old repository and no temp folder)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from generator.errors import GeneratorError
from generator.render import engine_signature_from_json, render_repository, validate_repository
from generator.render.template import PYTHON_MODEL_TEMPLATE
from tests.render.conftest import LABELS, Project

ALL_TARGETS: list[dict[str, Any]] = [
    {"precision": "fp32"},
    {"precision": "fp16", "version": 3},
    {"precision": "fp32", "target": "onnxruntime"},
    {"precision": "fp32", "target": "tensorrt"},
]
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_of_every_platform_and_it_validates(project: Project) -> None:
    spec = project.spec(ALL_TARGETS)
    repo = render_repository(spec, project.artifacts(spec))
    assert repo.path == project.root / "repo"
    assert repo.models == ("tiny_fp32", "tiny_fp16", "tiny_ort_fp32", "tiny_trt_fp32")
    files = _files(repo.path)
    assert files.pop(".trgen-repository").startswith(b"Written by trgen")  # the ownership marker
    assert set(files) == {
        "tiny_fp32/config.pbtxt", "tiny_fp32/labels.txt", "tiny_fp32/1/model.onnx", "tiny_fp32/1/model.py",
        "tiny_fp16/config.pbtxt", "tiny_fp16/labels.txt", "tiny_fp16/3/model.onnx", "tiny_fp16/3/model.py",
        "tiny_ort_fp32/config.pbtxt", "tiny_ort_fp32/labels.txt", "tiny_ort_fp32/1/model.onnx",
        "tiny_trt_fp32/config.pbtxt", "tiny_trt_fp32/labels.txt", "tiny_trt_fp32/1/model.plan",
        "tiny_trt_fp32/1/model.plan.json",
    }
    assert files["tiny_fp32/1/model.onnx"] == project.onnx.read_bytes()
    assert files["tiny_trt_fp32/1/model.plan"] == b"engine bytes of tiny_trt_fp32"
    assert files["tiny_fp32/labels.txt"].decode() == LABELS
    plan_sig = engine_signature_from_json(repo.path / "tiny_trt_fp32/1/model.plan.json")
    assert plan_sig == project.artifacts(spec)["tiny_trt_fp32"].signature
    assert [str(p) for p in validate_repository(repo.path)] == []


@pytest.mark.skipif(not (TEMPLATES / PYTHON_MODEL_TEMPLATE).is_file(), reason="templates/python_model.py.j2 not written yet")
def test_python_model_is_rendered_from_its_template(project: Project) -> None:
    from generator.render.template import render_python_model

    spec = project.spec()
    repo = render_repository(spec, project.artifacts(spec))
    text = (repo.path / "tiny_fp32/1/model.py").read_text()
    assert text == render_python_model("tiny_fp32", "model.onnx")
    compile(text, "model.py", "exec")  # the rendered backend code is valid Python
    assert "class TritonPythonModel" in text


def test_cc_model_files_are_copied(project: Project) -> None:
    spec = project.spec([{"precision": "fp32", "target": "tensorrt"}])
    rv = spec.resolved()[0]
    repo = render_repository(spec, {rv.name: project.artifact(rv, cc=("8.0", "9.0"))})
    folder = repo.path / "tiny_trt_fp32" / "1"
    assert (folder / "model_sm80.plan").read_bytes() == b"engine for sm 8.0"
    assert (folder / "model_sm90.plan").read_bytes() == b"engine for sm 9.0"
    assert validate_repository(repo.path) == []


def test_rendering_twice_is_byte_identical(project: Project) -> None:
    triton = {"parameters": {"b": 0.30000000000000004, "a": True}, "warmup": [{"data": "random"}],
              "dynamic_batching": {"preferred_batch_sizes": [8, 2, 4]}}
    spec = project.spec(ALL_TARGETS, triton=triton)
    first = _files(render_repository(spec, project.artifacts(spec), project.root / "one").path)
    second = _files(render_repository(spec, project.artifacts(spec), project.root / "two").path)
    again = _files(render_repository(spec, project.artifacts(spec), project.root / "one").path)
    assert first == second == again


def test_failure_mid_write_keeps_the_old_repository(project: Project) -> None:
    spec = project.spec(ALL_TARGETS)
    artifacts = project.artifacts(spec)
    repo = render_repository(spec, artifacts).path
    before = _files(repo)
    missing = dataclasses.replace(artifacts["tiny_trt_fp32"], model_file=project.root / "gone.plan")
    with pytest.raises(GeneratorError, match="gone.plan"):
        render_repository(spec, {**artifacts, "tiny_trt_fp32": missing})  # the last model fails to copy
    assert _files(repo) == before
    assert sorted(p.name for p in project.root.iterdir() if p.name.startswith(".")) == []  # no temp folder


def test_other_model_folders_are_replaced_whole(project: Project) -> None:
    old = project.spec([{"precision": "fp32"}, {"precision": "fp32", "target": "onnxruntime"}])
    render_repository(old, project.artifacts(old))
    new = project.spec([{"precision": "fp32"}])
    repo = render_repository(new, project.artifacts(new))
    assert sorted(p.name for p in repo.path.iterdir()) == [".trgen-repository", "tiny_fp32"]


def test_refuses_to_replace_a_folder_that_is_not_a_repository(project: Project) -> None:
    spec = project.spec()
    (project.root / "repo").mkdir()
    (project.root / "repo" / "notes.md").write_text("mine")
    with pytest.raises(GeneratorError, match="notes.md, which trgen did not write"):
        render_repository(spec, project.artifacts(spec))
    assert (project.root / "repo" / "notes.md").read_text() == "mine"


def test_missing_artifact_names_the_variant(project: Project) -> None:
    spec = project.spec(ALL_TARGETS)
    with pytest.raises(GeneratorError, match="'tiny_ort_fp32'.*trgen build"):
        render_repository(spec, {k: v for k, v in project.artifacts(spec).items() if k != "tiny_ort_fp32"})
    assert not (project.root / "repo").exists()


def test_render_command_builds_and_writes(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    (project.root / "spec.yaml").write_text(
        "repository: out\nmodels:\n  - name: tiny\n    onnx: tiny.onnx\n    labels: labels.txt\n"
        "    max_batch_size: 8\n    variants:\n      - {precision: fp32}\n      - {precision: fp32, target: onnxruntime}\n"
    )
    assert main(["render", str(project.root / "spec.yaml"), "--repository", str(project.root / "elsewhere")]) == 0
    assert "2 models (tiny_fp32, tiny_ort_fp32)" in capsys.readouterr().out
    assert validate_repository(project.root / "elsewhere") == [] and not (project.root / "out").exists()


def test_a_repository_that_would_not_load_is_never_written(project: Project) -> None:
    """The artifact's signature disagrees with its file: the validation of the temp folder stops it."""
    spec = project.spec()
    artifact = project.artifacts(spec)["tiny_fp32"]
    inputs = (dataclasses.replace(artifact.signature.inputs[0], name="image"),)
    lying = dataclasses.replace(artifact, signature=dataclasses.replace(artifact.signature, inputs=inputs))
    with pytest.raises(GeneratorError, match=r"would not load: .*repo/tiny_fp32/config.pbtxt:\d+: input 'image' is not in"):
        render_repository(spec, {"tiny_fp32": lying})
    assert not (project.root / "repo").exists()
    assert [p.name for p in project.root.iterdir() if p.name.startswith(".")] == []  # no temp folder left
