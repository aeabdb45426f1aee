"""The spec loader: typed values, path resolution, merged settings, and one-line file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import SpecError
from generator.spec import load_spec
from tests.conftest import EXAMPLE_DIR


def test_valid_spec_resolves_paths_and_names(tiny_spec: Path) -> None:
    spec = load_spec(tiny_spec)
    base = tiny_spec.parent.resolve()
    assert spec.workdir == base / "build"
    assert spec.models[0].onnx == base / "tiny.onnx"
    names = [rv.name for rv in spec.resolved()]
    assert names == ["tiny_fp32", "tiny_int8"]
    int8 = spec.resolved()[1]
    assert int8.workdir == base / "build" / "tiny_int8"
    assert int8.variant.calibration is not None and int8.variant.calibration.data.path == base / "data.npz"


def test_triton_settings_merge_field_by_field(tiny_spec: Path) -> None:
    text = tiny_spec.read_text().replace(
        "      - precision: fp32\n",
        "      - precision: fp32\n        triton:\n          response_cache: true\n",
    )
    tiny_spec.write_text(text)
    fp32, int8 = load_spec(tiny_spec).resolved()
    assert fp32.triton.response_cache is True
    assert int8.triton.response_cache is None
    # the top-level dynamic_batching reaches both variants
    assert fp32.triton.dynamic_batching is not None
    assert fp32.triton.dynamic_batching.preferred_batch_sizes == [4, 8]


def test_target_names_are_predictable(tiny_spec: Path) -> None:
    text = tiny_spec.read_text().replace(
        "      - precision: fp32\n", "      - precision: fp32\n      - precision: fp16\n        target: onnxruntime\n"
    )
    tiny_spec.write_text(text)
    assert [rv.name for rv in load_spec(tiny_spec).resolved()] == ["tiny_fp32", "tiny_ort_fp16", "tiny_int8"]


@pytest.mark.skipif(not (EXAMPLE_DIR / "model.onnx").exists(), reason="example model not generated")
def test_bundled_example_spec_loads() -> None:
    spec = load_spec(EXAMPLE_DIR / "spec.yaml")
    assert {rv.precision for rv in spec.resolved()} == {"fp32", "int8"}


def _error(spec_path: Path, old: str, new: str) -> SpecError:
    text = spec_path.read_text()
    assert old in text, old
    spec_path.write_text(text.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_spec(spec_path)
    message = str(info.value)
    assert "\n" not in message
    return info.value


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "fragment"),
    [
        ("    max_batch_size: 8\n", "    max_batch_size: 8\n    colour: red\n", 11, "models[0].colour", "unknown key"),
        ("max_batch_size: 8", "max_batch_size: eight", 10, "models[0].max_batch_size", "integer"),
        ("onnx: tiny.onnx", "onnx: missing.onnx", 9, "models[0].onnx", "file not found"),
        ("- name: tiny", "- name: ../x", 8, "models[0].name", "not a safe name"),
        ("- name: tiny", "- name: /abs", 8, "models[0].name", "not a safe name"),
        ("- name: tiny", "- name: a/b", 8, "models[0].name", "not a safe name"),
        ("      - precision: fp32\n", "      - precision: fp32\n        name: ..\n", 15, "models[0].variants[0].name", "safe"),
        ("preferred_batch_sizes: [4, 8]", "preferred_batch_sizes: [4, 16]", 6,
         "triton.dynamic_batching.preferred_batch_sizes[1]", "above the model's max_batch_size 8"),
        ("method: entropy", "method: kl", 17, "models[0].variants[1].calibration.method", "'entropy'"),
        ("data: {kind: arrays, path: data.npz}", "data: {kind: arrays, path: nope.npz}", 20,
         "models[0].variants[1].calibration.data.path", "file not found"),
        ("      - precision: int8\n        calibration:", "      - precision: fp32\n        calibration:", 15,
         "models[0].variants[1]", "only applies to int8"),
        ("      - precision: fp32\n", "      - precision: fp32\n      - precision: fp32\n", 15,
         "models[0].variants[1]", "both named 'tiny_fp32'"),
    ],
)
def test_bad_input_names_file_line_and_field(
    tiny_spec: Path, old: str, new: str, line: int, field: str, fragment: str
) -> None:
    error = _error(tiny_spec, old, new)
    assert error.line == line, str(error)
    assert error.field == field, str(error)
    assert fragment in str(error)
    assert str(error).startswith(f"{tiny_spec}:{line}: {field}: ")


def test_malformed_yaml_gives_position(tiny_spec: Path) -> None:
    error = _error(tiny_spec, "    max_batch_size: 8\n", "    max_batch_size: [8\n")
    assert error.line is not None and 10 <= error.line <= 12
    assert "invalid YAML" in str(error)


def test_duplicate_keys_are_refused(tiny_spec: Path) -> None:
    error = _error(tiny_spec, "    max_batch_size: 8\n", "    max_batch_size: 8\n    max_batch_size: 4\n")
    assert "duplicate key 'max_batch_size'" in str(error) and error.line == 11


def test_unloadable_onnx_is_a_spec_error(tiny_spec: Path) -> None:
    (tiny_spec.parent / "tiny.onnx").write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(SpecError) as info:
        load_spec(tiny_spec)
    assert info.value.line == 9 and "not a loadable ONNX model" in str(info.value)


def test_yaml_tags_are_not_executed(tiny_spec: Path) -> None:
    error = _error(tiny_spec, "version: 1", "version: !!python/object/apply:os.system ['echo pwned']")
    assert error.line == 1


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        load_spec(path)


def test_default_paths_resolve_against_the_spec_folder(tiny_spec: Path) -> None:
    tiny_spec.write_text(tiny_spec.read_text().replace("workdir: build\nrepository: repo\n", ""))
    spec = load_spec(tiny_spec)
    assert spec.workdir == tiny_spec.parent.resolve() / "build"
    assert spec.repository == tiny_spec.parent.resolve() / "model_repository"


@pytest.mark.parametrize(
    ("target", "build", "error"),
    [
        ("python-onnxruntime", "{ort_int8: exact}", None),
        ("onnxruntime", "{ort_int8: 'off'}", None),
        ("tensorrt", "{workspace_mib: 512}", None),
        ("python-onnxruntime", "{workspace_mib: 512}", "build.workspace_mib does not apply to target: python-onnxruntime"),
        ("tensorrt", "{ort_int8: exact}", "build.ort_int8 does not apply to target: tensorrt"),
    ],
)
def test_build_fields_match_the_target(tiny_spec: Path, target: str, build: str, error: str | None) -> None:
    tiny_spec.write_text(
        tiny_spec.read_text().replace("      - precision: int8\n", f"      - precision: int8\n        target: {target}\n        build: {build}\n")
    )
    if error is None:
        assert load_spec(tiny_spec).resolved()[1].variant.build is not None
    else:
        with pytest.raises(SpecError, match=error):
            load_spec(tiny_spec)


def test_two_variants_cannot_share_a_calibration_cache(tiny_spec: Path) -> None:
    int8 = "      - precision: int8\n        calibration:\n"
    text = tiny_spec.read_text().replace(int8, int8 + "          cache: shared.cache\n")
    second = "      - precision: int8\n        target: onnxruntime\n        calibration:\n          cache: shared.cache\n" \
             "          data: {kind: arrays, path: data.npz}\n"
    tiny_spec.write_text(text + second)
    with pytest.raises(SpecError, match="'tiny_int8' writes the same calibration cache") as info:
        load_spec(tiny_spec)
    assert info.value.field == "models[0].variants[2].calibration.cache"
