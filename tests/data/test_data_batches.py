"""load_batches: arrays, image folders and callables, validated against the model signature."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.data import Batch, load_batches
from generator.errors import GeneratorError
from generator.signature import Signature, TensorSig
from generator.spec.data import ArraysSource, CallableSource, ImagesSource, Preprocessing


def signature(*inputs: tuple[str, str, tuple[int, ...]]) -> Signature:
    return Signature(inputs=tuple(TensorSig(*i) for i in inputs), outputs=(TensorSig("out", "fp32", (-1, 10)),))


MNIST = signature(("input", "fp32", (-1, 1, 28, 28)))
SCALE = Preprocessing(scale=1 / 255)


def arrays(path: Path, **fields: object) -> ArraysSource:
    return ArraysSource(kind="arrays", path=path, **fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------ arrays


def test_npz_batches_scaled_with_labels(tmp_path: Path) -> None:
    pixels = np.arange(10 * 784, dtype=np.int64).reshape(10, 1, 28, 28) % 256
    np.savez_compressed(tmp_path / "d.npz", images=pixels.astype(np.uint8), y=np.arange(10))
    source = arrays(tmp_path / "d.npz", inputs={"input": "images"}, labels="y", preprocessing=SCALE)
    batches = list(load_batches(source, MNIST, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert all(isinstance(b, Batch) and b.inputs["input"].dtype == np.float32 for b in batches)
    joined = np.concatenate([b.inputs["input"] for b in batches])
    np.testing.assert_allclose(joined, pixels.astype(np.float32) * np.float32(1 / 255), rtol=1e-6)
    assert np.concatenate([b.labels for b in batches if b.labels is not None]).tolist() == list(range(10))


def test_limit_and_uneven_batches(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.zeros((50, 1, 28, 28), np.float32))
    batches = list(load_batches(arrays(tmp_path / "d.npy"), MNIST, batch_size=16, limit=35))
    assert [len(b) for b in batches] == [16, 16, 3] and batches[0].labels is None


def test_mean_std_per_channel_and_dtype(tmp_path: Path) -> None:
    x = np.stack([np.full((2, 2), 10), np.full((2, 2), 20), np.full((2, 2), 30)])[None].repeat(3, 0).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x)
    pre = Preprocessing(mean=[10.0, 20.0, 30.0], std=[1.0, 2.0, 5.0], dtype="float16")
    sig = signature(("x", "fp16", (-1, 3, 2, 2)))
    (batch,) = load_batches(arrays(tmp_path / "d.npz", preprocessing=pre), sig, batch_size=8)
    assert batch.inputs["x"].dtype == np.float16 and np.all(batch.inputs["x"] == 0)


def test_wrong_shape_names_input_and_expected_shape(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", input=np.zeros((8, 28, 28), np.uint8))
    with pytest.raises(GeneratorError, match=r"input 'input': got shape \(8, 28, 28\), expected \(N, 1, 28, 28\)"):
        list(load_batches(arrays(tmp_path / "d.npz", preprocessing=SCALE), MNIST, batch_size=8))


def test_wrong_dtype_names_input(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", input=np.zeros((4, 1, 28, 28), np.uint8))
    with pytest.raises(GeneratorError, match=r"input 'input': got dtype uint8, expected float32") as info:
        list(load_batches(arrays(tmp_path / "d.npz"), MNIST, batch_size=8))  # no preprocessing: passed through
    assert "\n" not in str(info.value)


def test_empty_data_set(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", input=np.zeros((0, 1, 28, 28), np.uint8))
    with pytest.raises(GeneratorError, match="empty"):
        list(load_batches(arrays(tmp_path / "d.npz", preprocessing=SCALE), MNIST, batch_size=8))


def test_missing_key_lists_the_file_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", pixels=np.zeros((4, 1, 28, 28), np.uint8))
    with pytest.raises(GeneratorError, match=r"no array 'input' for input 'input' \(the file has: pixels\)"):
        list(load_batches(arrays(tmp_path / "d.npz"), MNIST, batch_size=8))


def test_mismatched_lengths(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", input=np.zeros((4, 1, 28, 28), np.uint8), labels=np.zeros(5))
    with pytest.raises(GeneratorError, match="different sample counts"):
        list(load_batches(arrays(tmp_path / "d.npz", labels="labels", preprocessing=SCALE), MNIST, batch_size=8))


def test_fortran_ordered_member_still_loads(tmp_path: Path) -> None:
    x = np.asfortranarray(np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32))
    np.savez(tmp_path / "d.npz", input=x)
    (batch,) = load_batches(arrays(tmp_path / "d.npz"), MNIST, batch_size=8)
    np.testing.assert_array_equal(batch.inputs["input"], x)


# ------------------------------------------------------------------ images


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    colours = {"cat": (255, 0, 0), "dog": (0, 0, 255)}
    for label, colour in colours.items():
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 10), colour).save(root / label / f"{i}.png")
    return root


def test_images_with_subfolder_labels(image_folder: Path) -> None:
    pre = Preprocessing(resize=(10, 10), center_crop=(8, 6), color="BGR", scale=1 / 255)
    source = ImagesSource(kind="images", path=image_folder, labels="subfolders", preprocessing=pre)
    sig = signature(("img", "fp32", (-1, 3, 8, 6)))
    batches = list(load_batches(source, sig, batch_size=4))
    assert [len(b) for b in batches] == [4, 2]
    labels = np.concatenate([b.labels for b in batches if b.labels is not None])
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    first = batches[0].inputs["img"][0]  # a red 'cat' image in BGR order: channel 2 is red
    assert first.shape == (3, 8, 6) and first[2].min() == pytest.approx(1.0) and first[0].max() == 0.0


def test_images_gray_nhwc_uint8(image_folder: Path) -> None:
    pre = Preprocessing(color="GRAY", layout="NHWC", dtype="uint8")
    source = ImagesSource(kind="images", path=image_folder, preprocessing=pre)
    (batch,) = load_batches(source, signature(("img", "uint8", (-1, 10, 12, 1))), batch_size=8)
    assert batch.inputs["img"].shape == (6, 10, 12, 1) and batch.labels is None


def test_image_folder_wrong_size_names_input(image_folder: Path) -> None:
    source = ImagesSource(kind="images", path=image_folder, preprocessing=Preprocessing(scale=1 / 255))
    with pytest.raises(GeneratorError, match=r"input 'img': got shape \(6, 3, 10, 12\), expected \(N, 3, 8, 8\)"):
        list(load_batches(source, signature(("img", "fp32", (-1, 3, 8, 8))), batch_size=8))


def test_unreadable_image_is_named(image_folder: Path) -> None:
    (image_folder / "cat" / "broken.png").write_bytes(b"not a png")
    source = ImagesSource(kind="images", path=image_folder)
    with pytest.raises(GeneratorError, match="broken.png"):
        list(load_batches(source, signature(("img", "fp32", (-1, 3, 10, 12))), batch_size=8))


# ------------------------------------------------------------------ callables


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"trgen_user_data_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import numpy as np

        def batches(count, size):
            for i in range(count):
                yield {"input": np.full((size, 1, 28, 28), i, np.float32), "labels": np.full(size, i)}

        def broken():
            yield {"input": np.zeros((2, 1, 28, 28), np.float32)}
            raise RuntimeError("disk on fire")

        def not_dicts():
            yield [1, 2, 3]

        def endless():
            while True:
                yield {"input": np.zeros((3, 1, 28, 28), np.float32)}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_callable_rebatched(user_module: str) -> None:
    source = CallableSource(kind="callable", callable=f"{user_module}:batches", args={"count": 3, "size": 5})
    batches = list(load_batches(source, MNIST, batch_size=4, limit=14))
    assert [len(b) for b in batches] == [4, 4, 4, 2]
    assert batches[1].labels is not None and batches[1].labels.tolist() == [0, 1, 1, 1]
    assert batches[1].inputs["input"][:, 0, 0, 0].tolist() == [0, 1, 1, 1]


def test_limit_stops_an_endless_callable(user_module: str) -> None:
    source = CallableSource(kind="callable", callable=f"{user_module}:endless")
    assert [len(b) for b in load_batches(source, MNIST, batch_size=4, limit=10)] == [4, 4, 2]


def test_callable_that_raises_is_named(user_module: str) -> None:
    source = CallableSource(kind="callable", callable=f"{user_module}:broken")
    with pytest.raises(GeneratorError) as info:
        list(load_batches(source, MNIST, batch_size=4))
    message = str(info.value)
    assert f"{user_module}:broken" in message and "RuntimeError: disk on fire" in message and "\n" not in message


def test_callable_errors(user_module: str) -> None:
    with pytest.raises(GeneratorError, match="must yield dicts"):
        list(load_batches(CallableSource(kind="callable", callable=f"{user_module}:not_dicts"), MNIST, batch_size=4))
    with pytest.raises(GeneratorError, match="has no function 'missing'"):
        list(load_batches(CallableSource(kind="callable", callable=f"{user_module}:missing"), MNIST, batch_size=4))
    with pytest.raises(GeneratorError, match="cannot import 'no_such_module_xyz'.*PYTHONPATH"):
        list(load_batches(CallableSource(kind="callable", callable="no_such_module_xyz:f"), MNIST, batch_size=4))
    bad_args = CallableSource(kind="callable", callable=f"{user_module}:batches", args={"nope": 1})
    with pytest.raises(GeneratorError, match="raised TypeError"):
        list(load_batches(bad_args, MNIST, batch_size=4))
