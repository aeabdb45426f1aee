"""`model_repository/` is the rendered example: re-render it and fail on any difference.

Configs, model.py, labels and the FP32 model must be byte-identical. The INT8 model (the Q/DQ model
rewritten for onnxruntime's integer kernels) comes from calibration, whose floating-point sums may
differ in the last bit across numpy/onnxruntime builds, so it is compared structurally: same graph,
scales within 1e-6 relative, and int32 biases (round(bias / scale), where such a last-bit change can
flip the rounding) within 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from generator.pipeline import prepare_repository
from generator.spec import load_spec
from tests.conftest import EXAMPLE_DIR, REPO_ROOT

GOLDEN = REPO_ROOT / "model_repository"


@pytest.fixture(scope="module")
def rerendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = load_spec(EXAMPLE_DIR / "spec.yaml")
    spec = spec.model_copy(update={"workdir": tmp_path_factory.mktemp("work")})
    out = tmp_path_factory.mktemp("golden") / "model_repository"
    return prepare_repository(spec, repository=out, progress=False).path


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_same_files(rerendered: Path) -> None:
    assert _files(rerendered) == _files(GOLDEN)


def test_text_and_fp32_files_are_byte_identical(rerendered: Path) -> None:
    differing = [
        name for name in _files(GOLDEN)
        if not name.endswith("mnist_int8/1/model.onnx") and (GOLDEN / name).read_bytes() != (rerendered / name).read_bytes()
    ]
    assert not differing, f"re-rendered files differ from model_repository/: {differing} (run `trgen render examples/mnist/spec.yaml`)"


def test_int8_model_matches_structurally(rerendered: Path) -> None:
    golden = onnx.load(str(GOLDEN / "mnist_int8/1/model.onnx"))
    fresh = onnx.load(str(rerendered / "mnist_int8/1/model.onnx"))
    assert [(n.op_type, list(n.input), list(n.output)) for n in golden.graph.node] == [
        (n.op_type, list(n.input), list(n.output)) for n in fresh.graph.node
    ]
    fresh_init = {i.name: numpy_helper.to_array(i) for i in fresh.graph.initializer}
    assert sorted(fresh_init) == sorted(i.name for i in golden.graph.initializer)
    for init in golden.graph.initializer:
        expected, got = numpy_helper.to_array(init), fresh_init[init.name]
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), init.name
        if expected.dtype == np.int32:  # a bias in units of s_x * s_w: rounding may flip by one step
            np.testing.assert_allclose(got, expected, rtol=0, atol=1, err_msg=init.name)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=init.name)
