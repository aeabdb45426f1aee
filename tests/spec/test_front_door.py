"""`trgen check` is the whole front door: each check decidable before work, one line at the spec line,
every problem printed, and nothing written by any command before it passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from generator.cli import main

EVAL = "      data: {kind: arrays, path: data.npz, labels: labels}\n"


def _errors(spec: Path, capsys: pytest.CaptureFixture[str], command: str = "check") -> list[str]:
    assert main([command, str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("trgen: error: ") for line in err), err
    assert not (spec.parent / "build").exists() and not (spec.parent / "repo").exists()
    return [line.removeprefix("trgen: error: ") for line in err]


def _edit(spec: Path, old: str, new: str) -> Path:
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))
    return spec


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("    max_batch_size: 8\n", "    max_batch_size: 8\n    inputs: [{name: input, dtype: fp16}]\n",
         ":11: models[0].inputs[0].dtype: dtype fp16 does not match the model: tiny.onnx has fp32"),
        ("    max_batch_size: 8\n", "    max_batch_size: 8\n    outputs: [{name: logits, dims: [5]}]\n",
         ":11: models[0].outputs[0].dims: dim 0 is 5 but tiny.onnx has a fixed 4 there ([4])"),
        ("    max_batch_size: 8\n", "    max_batch_size: 8\n    inputs: [{name: image}]\n",
         ":11: models[0].inputs[0]: the model has no input 'image' (it has: input)"),
        ("    max_batch_size: 8\n", "    max_batch_size: 8\n    labels: three.txt\n",
         ":11: models[0].labels: the labels file has 3 labels, but 0 outputs have 3 classes"),
        ("workdir: build\n", "workdir: tiny.onnx\n",
         ":2: workdir: {dir}/tiny.onnx exists and is a file, not a folder"),
        ("repository: repo\n", "repository: tiny.onnx\n",
         ":3: repository: {dir}/tiny.onnx exists and is a file, not a folder"),
        ("models:\n", "modelz:\n", ":7: modelz: unknown key 'modelz'; did you mean 'models'?"),
        ("  - name: tiny\n", "  - name: no\n", ":8: models[0].name: Input should be a valid string (YAML reads a bare no "
         "as false: quote it, 'no')"),
        ("    max_batch_size: 8\n", "\tmax_batch_size: 8\n", "invalid YAML: found character '\\t' that cannot start any "
         "token (YAML indents with spaces only: replace the tab)"),
        ("    max_batch_size: 8\n", "    max_batch_size: 1.0e+30\n", ":10: models[0].max_batch_size: "),
        ("    max_batch_size: 8\n", "    max_batch_size: 3000000000\n",
         ":10: models[0].max_batch_size: 3000000000 is out of range: integers here must be between -2147483648 and 2147483647"),
    ],
)
def test_each_front_door_check(tiny_spec: Path, capsys: pytest.CaptureFixture[str], old: str, new: str,
                               expected: str) -> None:
    (tiny_spec.parent / "three.txt").write_text("a\nb\nc\n")
    errors = _errors(_edit(tiny_spec, old, new), capsys)
    assert any(expected.format(dir=tiny_spec.parent) in line for line in errors), errors
    assert all(line.startswith(f"{tiny_spec}") for line in errors), errors


def test_every_problem_is_printed_and_unknown_keys_named_with_missing_ones(tiny_spec: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    tiny_spec.write_text("version: 2\nmodelz: []\nworkdri: build\n")
    errors = _errors(tiny_spec, capsys)
    assert [e.split(": ", 1)[1] for e in errors] == [
        "version: Input should be 1 (got 2)", "models: required field is missing",
        "modelz: unknown key 'modelz'; did you mean 'models'?", "workdri: unknown key 'workdri'; did you mean 'workdir'?",
    ], errors


def test_evaluation_labels_outside_the_classes(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    np.savez(tiny_spec.parent / "data.npz", input=rng.random((64, 1, 8, 8), dtype=np.float32),
             labels=np.full(64, 7, np.int64))  # the model has 4 classes
    errors = _errors(tiny_spec, capsys)
    assert any(":12: models[0].evaluation.data.labels: label 7 at sample 0 is outside the model's classes (0..3)" in e
               for e in errors), errors


def test_per_sample_box_or_sequence_labels_are_not_class_indices(tiny_spec: Path) -> None:
    """Detection boxes [N, 3, 5] (values far above the 4 classes) and CTC sequences [N, 4] pass the front door."""
    rng = np.random.default_rng(0)
    for labels in (rng.integers(0, 64, (64, 3, 5)), rng.integers(1, 11, (64, 4))):
        np.savez(tiny_spec.parent / "data.npz", input=rng.random((64, 1, 8, 8), dtype=np.float32), labels=labels)
        assert main(["check", str(tiny_spec)]) == 0


def test_nan_in_the_input_data_is_named_as_the_datas(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = np.random.default_rng(0).random((64, 1, 8, 8), dtype=np.float32)
    data[5, 0, 3, 3] = np.nan
    np.savez(tiny_spec.parent / "data.npz", input=data, labels=np.zeros(64, np.int64))
    errors = _errors(tiny_spec, capsys, "calibrate")
    assert any(":12: models[0].evaluation.data: input 'input': the data holds NaN or Inf values: the data is broken, "
               "not the model" in e for e in errors), errors


def test_an_already_quantized_model_is_not_quantized_again(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from onnx import helper

    model = onnx.load(str(tiny_spec.parent / "tiny.onnx"))
    first = model.graph.node[0]
    scale = helper.make_tensor("q_scale", onnx.TensorProto.FLOAT, [], [0.1])
    model.graph.initializer.append(scale)
    q = helper.make_node("QuantizeLinear", [first.input[0], "q_scale"], ["q_out"])
    dq = helper.make_node("DequantizeLinear", ["q_out", "q_scale"], ["dq_out"])
    first.input[0] = "dq_out"
    model.graph.node.insert(0, dq)
    model.graph.node.insert(0, q)
    onnx.save(model, str(tiny_spec.parent / "tiny.onnx"))
    errors = _errors(tiny_spec, capsys)
    assert any(":9: models[0].onnx: tiny.onnx is already quantized (2 QuantizeLinear/DequantizeLinear" in e
               for e in errors), errors


def test_run_needs_an_evaluation_block_for_int8_check_only_notes_it(tiny_spec: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _edit(tiny_spec, "    evaluation:\n" + EVAL, "")
    errors = _errors(tiny_spec, capsys, "run")
    assert any("variant tiny_int8 is int8 but the model has no 'evaluation' block" in e for e in errors), errors
    assert main(["check", str(tiny_spec)]) == 0
    assert "note: " in capsys.readouterr().err


def test_merge_keys_and_x_extension_keys(tiny_spec: Path) -> None:
    _edit(tiny_spec, "models:\n", "x-cal: &cal {method: entropy, samples: 32, batch_size: 8}\nmodels:\n")
    _edit(tiny_spec, "          method: entropy\n          samples: 32\n          batch_size: 8\n", "          <<: *cal\n")
    assert main(["check", str(tiny_spec)]) == 0


def test_more_samples_than_the_data_holds_is_said_once(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(tiny_spec, "samples: 32", "samples: 512")
    assert main(["calibrate", str(tiny_spec)]) == 0
    err = capsys.readouterr().err
    assert err.count("calibration.samples: asks for 512 samples but the data holds 64: all 64 will be used") == 1, err


def test_image_folders_with_more_classes_than_the_model(tiny_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    for c in range(5):  # the tiny model tells 4 classes apart
        folder = tiny_spec.parent / "images" / f"class{c}"
        folder.mkdir(parents=True)
        Image.fromarray(np.full((8, 8), 40 * c, np.uint8)).save(folder / "a.png")
    _edit(tiny_spec, EVAL, "      data: {kind: images, path: images, labels: subfolders, "
                           "preprocessing: {color: GRAY, scale: 0.0039215686}}\n")
    errors = _errors(tiny_spec, capsys)
    assert any(":12: models[0].evaluation.data.labels: 5 class subfolders but the model has 4 classes" in e
               for e in errors), errors
