"""Where calibration and evaluation data come from, and how it is preprocessed.

The same `DataSource` (and so the same preprocessing) feeds calibration and evaluation, so the INT8
scales are computed on exactly the distribution the model is measured on.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pathlib import Path

from pydantic import Field, PositiveFloat, PositiveInt, PrivateAttr, ValidationInfo, field_validator, model_validator

from .base import ExistingPath, StrictModel

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class Preprocessing(StrictModel):
    """Applied in this order: resize, centre crop, colour order, scale, mean/std, layout, dtype.

    resize / center_crop / color / layout apply to images only; scale, mean, std and dtype apply to
    arrays too (e.g. uint8 pixels stored in an .npz, scaled by 1/255).
    """

    resize: tuple[PositiveInt, PositiveInt] | None = None
    center_crop: tuple[PositiveInt, PositiveInt] | None = None
    color: Literal["RGB", "BGR", "GRAY"] = "RGB"
    scale: float = 1.0
    mean: list[float] | None = None
    std: list[PositiveFloat] | None = None
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    dtype: Literal["float32", "float16", "uint8", "int8", "int32", "int64"] = "float32"


class ArraysSource(StrictModel):
    """`.npy` (one input) or `.npz` (one key per input; optional labels key)."""

    kind: Literal["arrays"]
    path: ExistingPath
    inputs: dict[str, str] | None = Field(
        default=None, description="model input name -> array key in the .npz (default: the same name)"
    )
    labels: str | None = Field(default=None, description="key of an integer label array in the .npz")
    preprocessing: Preprocessing = Preprocessing()

    @field_validator("path")
    @classmethod
    def _suffix(cls, value: Any) -> Any:
        if value.suffix not in {".npy", ".npz"}:
            raise ValueError(f"{value.name}: arrays must be a .npy or .npz file")
        return value


class ImagesSource(StrictModel):
    """A folder of images (png/jpg/...); with `labels: subfolders` each subfolder is a class (sorted)."""

    kind: Literal["images"]
    path: ExistingPath
    input: str | None = Field(default=None, description="model input fed with the images (default: the only input)")
    labels: Literal["none", "subfolders"] = "none"
    preprocessing: Preprocessing = Preprocessing()


class CallableSource(StrictModel):
    """`package.module:function(**args)` yielding dicts of input name -> batch array.

    This imports and runs user code: a spec loaded from a file may only do so with the user's consent
    (--trust-code or `trust_code: true`); a source built in Python is the caller's own code. The spec's
    folder is searched first, so a module beside the spec is found.
    """

    kind: Literal["callable"]
    callable: str
    args: dict[str, Any] = Field(default_factory=dict)
    _trusted: bool = PrivateAttr(default=True)
    _folder: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consent(self, info: ValidationInfo) -> "CallableSource":
        context = info.context or {}
        if "trust_code" in context:  # loaded from a spec file
            self._trusted = bool(context["trust_code"])
            self._folder = context.get("base_dir")
        return self

    @property
    def trusted(self) -> bool:
        """Whether the user consented to running this code."""
        return self._trusted

    @property
    def folder(self) -> Path | None:
        """The spec's folder, put first on the import path while the module is imported."""
        return self._folder

    @field_validator("callable")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not _CALLABLE.match(value):
            raise ValueError(f"{value!r} must look like 'package.module:function'")
        return value


DataSource = Annotated[Union[ArraysSource, ImagesSource, CallableSource], Field(discriminator="kind")]
