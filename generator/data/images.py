"""Image folders as model input: decode with Pillow, then the spec's declared preprocessing.

Order (as documented on `Preprocessing`): resize to (height, width) exactly, centre crop to
(height, width), colour order (RGB, BGR, or GRAY with one channel), scale, mean/std per channel,
layout (NCHW or NHWC), dtype. Files are read one at a time in sorted path order, so memory does not
grow with the folder. With `labels: subfolders`, each top-level subfolder is a class, numbered in
sorted name order (as torchvision's ImageFolder does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GeneratorError
from ..signature import Signature
from ..spec.data import ImagesSource, Preprocessing
from .arrays import Chunk, apply_numeric

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def list_images(source: ImagesSource) -> list[tuple[Path, int | None]]:
    """Every image file under the folder in sorted order, with its class index (subfolders) or None."""
    root = Path(source.path)
    if not root.is_dir():
        raise GeneratorError("kind: images needs a folder", where=root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if source.labels == "none":
        return [(p, None) for p in files]
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    index = {name: i for i, name in enumerate(classes)}
    out: list[tuple[Path, int | None]] = []
    for p in files:
        parts = p.relative_to(root).parts
        if len(parts) < 2:
            raise GeneratorError(f"{parts[0]} is not inside a class subfolder (labels: subfolders)", where=root)
        out.append((p, index[parts[0]]))
    return out


def image_chunks(source: ImagesSource, signature: Signature) -> Iterator[Chunk]:
    """One chunk per image: {input: array of one sample}, labels of one sample (or None)."""
    input_name = source.input
    names = [t.name for t in signature.inputs]
    if input_name is None:
        if len(names) != 1:
            raise GeneratorError(f"the model has {len(names)} inputs: set 'input' to the one fed with images", where=source.path)
        input_name = names[0]
    pre = source.preprocessing
    for path, label in list_images(source):
        sample = load_image(path, pre)
        labels = np.asarray([label], dtype=np.int64) if label is not None else None
        yield {input_name: sample[None]}, labels


def load_image(path: Path, pre: Preprocessing) -> np.ndarray:
    """Decode one image and apply `pre`: returns one sample (C, H, W) or (H, W, C)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = opened.convert("L" if pre.color == "GRAY" else "RGB")
            if pre.resize is not None:
                height, width = pre.resize
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            if pre.center_crop is not None:
                image = _center_crop(image, pre.center_crop, path)
            pixels = np.asarray(image)
    except (OSError, UnidentifiedImageError) as exc:
        raise GeneratorError(f"cannot read the image ({exc.__class__.__name__}): remove or replace it", where=path) from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pre.color == "BGR":
        pixels = pixels[:, :, ::-1]
    sample = apply_numeric(pixels, pre, channel_axis=-1, where=str(path))  # HWC here
    if pre.layout == "NCHW":
        sample = sample.transpose(2, 0, 1)
    return np.ascontiguousarray(sample)


def _center_crop(image: "Image.Image", size: tuple[int, int], path: Path) -> "Image.Image":
    height, width = size
    if image.height < height or image.width < width:
        raise GeneratorError(
            f"image is {image.width}x{image.height}, smaller than center_crop {width}x{height}: add a resize", where=path
        )
    left = (image.width - width) // 2
    top = (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))
