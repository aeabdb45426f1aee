"""calibrate_model / calibrate_variant / `trgen calibrate` on tiny ONNX models: outputs, skipping, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.calibrate.calib_helpers import TINY_TENSORS, calibration, make_tiny_model, write_pixels

from generator.calibrate import calibrate_model, check_cache_matches, read_cache
from generator.calibrate.collect import collect_histograms
from generator.data import load_batches
from generator.cli import main
from generator.errors import GeneratorError
from generator.signature import read_onnx_signature
from generator.spec.data import ArraysSource, Preprocessing


def run(model: Path, data: Path, out: Path, **overrides: object):  # type: ignore[no-untyped-def]
    force = bool(overrides.pop("force", False))
    tensors = overrides.pop("tensors", TINY_TENSORS)
    return calibrate_model(
        model, calibration(data, **overrides), out, variant="tiny_int8", tensors=tensors,  # type: ignore[arg-type]
        force=force, progress=False, trt_version=100300,
    )


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_outputs(tiny_model: Path, pixels: Path, tmp_path: Path) -> None:
    out = tmp_path / "work" / "calibration"
    result = run(tiny_model, pixels, out, plots=True)
    assert not result.skipped and result.method == "entropy" and list(result.amax) == TINY_TENSORS
    assert all(v > 0 for v in result.amax.values())
    assert result.amax["input"] <= 1.0  # pixels scaled to [0, 1]
    cache = read_cache(result.cache_path)
    assert result.cache_path == out / "calibration.cache" and cache.version == 100300
    assert cache.algorithm == "EntropyCalibration2"
    check_cache_matches(cache, TINY_TENSORS)
    for name, amax in result.amax.items():
        assert cache.amax[name] == pytest.approx(amax, rel=1e-6)

    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["model"] == {"path": str(tiny_model), "sha256": hashlib.sha256(tiny_model.read_bytes()).hexdigest()}
    assert manifest["hashes"]["model"] == manifest["model"]["sha256"]
    assert manifest["data"] == [{"path": str(pixels), "sha256": hashlib.sha256(pixels.read_bytes()).hexdigest()}]
    assert manifest["samples"] == 32 and manifest["method"] == "entropy"
    assert manifest["tool_version"] == __import__("generator").__version__
    entry = manifest["tensors"]["relu"]
    assert entry["amax"] == result.amax["relu"] and entry["min"] >= 0.0 and entry["bins"] >= 2048
    assert {"divergence", "mse", "guarded", "method", "max"} <= set(entry)
    assert manifest["guarded"] == [n for n in TINY_TENSORS if manifest["tensors"][n]["guarded"]]

    report = result.report_dir
    assert (report / "overview.png").stat().st_size > 1000
    assert len(list(report.glob("0*_*.png"))) == 3
    table = (report / "README.md").read_text()
    assert all(f"`{name}`" in table for name in TINY_TENSORS)
    assert [p.name for p in out.parent.iterdir()] == ["calibration"]  # no temporary folders left


def test_no_plots_by_default(tiny_model: Path, pixels: Path, tmp_path: Path) -> None:
    result = run(tiny_model, pixels, tmp_path / "calibration")
    assert not list(result.report_dir.glob("*.png"))
    assert "`relu`" in (result.report_dir / "README.md").read_text()


def test_a_small_budget_slices_batches_and_counts_the_same(tiny_model: Path, pixels: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 12: memory bounded by the activation budget, not the batch size; histograms do not change
    import onnx

    from generator.calibrate import collect

    source = ArraysSource(kind="arrays", path=pixels, preprocessing=Preprocessing(scale=1 / 255))
    model = onnx.load(str(tiny_model))
    sizes: list[int] = []
    real_run = collect._run

    def spy(session, fetch, feeds, **kw):  # type: ignore[no-untyped-def]
        sizes.append(len(next(iter(feeds.values()))))
        return real_run(session, fetch, feeds, **kw)

    monkeypatch.setattr(collect, "_run", spy)
    whole, _ = collect_histograms(model, TINY_TENSORS, load_batches(source, read_onnx_signature(tiny_model), batch_size=16, limit=32),
                                  where=tiny_model)
    assert max(sizes) == 16
    sizes.clear()
    sliced, _ = collect_histograms(model, TINY_TENSORS, load_batches(source, read_onnx_signature(tiny_model), batch_size=16, limit=32),
                                   where=tiny_model, budget=2 * 3 * 2 * 4 * 256)  # 3 samples of relu + flat per slice
    assert 1 < max(sizes[1:]) < 16  # sizes[0] is the one-sample probe
    for name in TINY_TENSORS:
        assert sliced[name].total == whole[name].total and sliced[name].amax == whole[name].amax
    sizes.clear()
    collect_histograms(model, TINY_TENSORS, load_batches(source, read_onnx_signature(tiny_model), batch_size=16, limit=32),
                       where=tiny_model, budget=1, fixed_batch=True)
    assert set(sizes) == {16}  # a fixed batch dimension is never sliced


def test_histograms_are_exact_over_batches(tiny_model: Path, pixels: Path) -> None:
    # the input histogram streamed over 4 batches counts every value once
    source = ArraysSource(kind="arrays", path=pixels, preprocessing=Preprocessing(scale=1 / 255))
    import onnx

    batches = load_batches(source, read_onnx_signature(tiny_model), batch_size=8, limit=32)
    hists, samples = collect_histograms(onnx.load(str(tiny_model)), TINY_TENSORS, batches, where=tiny_model)
    assert samples == 32 and hists["input"].total == 32 * 64 and hists["relu"].total == 32 * 4 * 64
    pixels_seen = np.load(pixels)["input"][:32].astype(np.float32) * np.float32(1 / 255)
    assert hists["input"].amax == pytest.approx(float(pixels_seen.max()))


def test_skip_force_and_changes(tiny_model: Path, pixels: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibration"
    first = run(tiny_model, pixels, out)
    files = listing(out)
    again = run(tiny_model, pixels, out)
    assert again.skipped and again.amax == first.amax and listing(out) == files
    assert not run(tiny_model, pixels, out, force=True).skipped
    assert not run(tiny_model, pixels, out, method="minmax").skipped  # settings changed
    assert read_cache(out / "calibration.cache").algorithm == "MinMaxCalibration"
    assert run(tiny_model, pixels, out, method="minmax").skipped
    write_pixels(pixels, 40, seed=9)  # data changed
    assert not run(tiny_model, pixels, out, method="minmax").skipped
    (out / "calibration.cache").write_text("TRT-100300-MinMaxCalibration\n")  # damaged output
    assert not run(tiny_model, pixels, out, method="minmax").skipped
    (out / "manifest.json").write_text("{")  # damaged manifest: recalibrate, not an error
    assert not run(tiny_model, pixels, out, method="minmax").skipped


def test_moved_project_stays_calibrated(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    make_tiny_model(old / "tiny.onnx")
    write_pixels(old / "calib.npz", 40)
    first = run(old / "tiny.onnx", old / "calib.npz", old / "calibration")
    shutil.copytree(old, new)
    moved = run(new / "tiny.onnx", new / "calib.npz", new / "calibration")
    assert moved.skipped and moved.amax == first.amax  # contents, not paths, decide


def test_custom_cache_path(tiny_model: Path, pixels: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "tiny.cache"
    result = run(tiny_model, pixels, tmp_path / "calibration", cache=target)
    assert result.cache_path == target and target.is_file()
    assert not (tmp_path / "calibration" / "calibration.cache").exists()
    assert run(tiny_model, pixels, tmp_path / "calibration", cache=target).skipped
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny.cache"]


def test_non_finite_activation_names_tensor_and_batch(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "log.onnx", log_first=True)
    data = tmp_path / "d.npz"
    x = np.random.default_rng(0).integers(1, 256, (40, 1, 8, 8), dtype=np.uint8)
    x[17, 0, 3, 3] = 0  # Log(0) = -inf, in batch 2 (batch size 8)
    np.savez(data, input=x)
    out = tmp_path / "work" / "calibration"
    with pytest.raises(GeneratorError, match=r"activation 'logged' holds Inf in calibration batch 2 \(samples 16-23\)"):
        run(model, data, out, tensors=["input", "logged", "relu", "flat"])
    assert not (tmp_path / "work").exists() or list((tmp_path / "work").iterdir()) == []


def test_failed_rerun_keeps_previous_outputs(tiny_model: Path, pixels: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibration"
    run(tiny_model, pixels, out)
    files = listing(out)
    np.savez(pixels, input=np.zeros((8, 28, 28), np.uint8))  # now the wrong shape
    with pytest.raises(GeneratorError, match=r"input 'input': got shape \(8, 28, 28\), expected \(N, 1, 8, 8\)"):
        run(tiny_model, pixels, out, force=True)
    assert listing(out) == files and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_tensor_lists(tiny_model: Path, pixels: Path, tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="no tensor named 'nope'"):
        run(tiny_model, pixels, tmp_path / "c", tensors=["input", "nope"])
    with pytest.raises(GeneratorError, match="is a weight"):
        run(tiny_model, pixels, tmp_path / "c", tensors=["conv_w"])
    with pytest.raises(GeneratorError, match="no activation tensors"):
        run(tiny_model, pixels, tmp_path / "c", tensors=[])
    assert not (tmp_path / "c").exists()


def test_fixed_batch_model_uses_its_batch(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "fixed.onnx", fixed_batch=4)
    data = write_pixels(tmp_path / "d.npz", 30)
    result = run(model, data, tmp_path / "calibration", samples=30, batch_size=8)
    assert json.loads(result.manifest_path.read_text())["samples"] == 28  # 7 full batches of 4


# ------------------------------------------------------------------ through the spec and the CLI

SPEC = """\
version: 1
workdir: build
models:
  - name: tiny
    onnx: tiny.onnx
    max_batch_size: 8
    variants:
      - precision: fp32
      - precision: int8
        calibration:
          samples: 32
          batch_size: 8
          data: {kind: arrays, path: calib.npz, preprocessing: {scale: 0.00392156862745098}}
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    make_tiny_model(tmp_path / "tiny.onnx")
    write_pixels(tmp_path / "calib.npz", 40)
    (tmp_path / "spec.yaml").write_text(SPEC)
    return tmp_path / "spec.yaml"


def test_calibrate_variant_uses_the_placement(spec_file: Path) -> None:
    import onnx

    from generator.pipeline import calibrate
    from generator.quantize.placement import activation_tensors
    from generator.spec import load_spec

    (rv,) = [r for r in load_spec(spec_file).resolved() if r.precision == "int8"]
    result = calibrate(rv, progress=False)
    assert list(result.amax) == activation_tensors(onnx.load(str(spec_file.parent / "tiny.onnx")))
    assert result.manifest_path == spec_file.parent / "build" / "tiny_int8" / "calibration" / "manifest.json"


def test_cli_calibrate(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", str(spec_file)]) == 0
    out = capsys.readouterr().out
    assert "tiny_int8: calibrated" in out and "calibration.cache" in out
    assert (spec_file.parent / "build" / "tiny_int8" / "model_int8_qdq.onnx").is_file()
    assert main(["calibrate", str(spec_file), "--model", "tiny"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["calibrate", str(spec_file), "--force"]) == 0
    assert "tiny_int8: calibrated" in capsys.readouterr().out


def test_cli_bad_data_is_one_line_and_writes_nothing(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(spec_file.parent / "calib.npz", input=np.zeros((8, 28, 28), np.uint8))
    assert main(["calibrate", str(spec_file)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "trgen: error" in line]  # beside the progress bar
    assert len(errors) == 1 and "input 'input': got shape (8, 28, 28), expected (N, 1, 8, 8)" in errors[0]
    assert not (spec_file.parent / "build").exists()
    assert main(["calibrate", str(spec_file), "--model", "nope"]) == 2
    assert "no such model" in capsys.readouterr().err
