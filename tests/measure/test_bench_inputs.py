"""Request shapes and data from model metadata, settings checks and CLI argument errors (no server)."""

from __future__ import annotations

import numpy as np
import pytest

from generator.cli import main
from generator.errors import EXIT_USER_ERROR, GeneratorError
from generator.measure.bench import BenchSettings
from generator.measure.client import ModelMeta, TensorMeta, host_port, is_local
from generator.measure.inputs import _shm_module, parse_shapes, random_array, raw_bytes, resolve_shapes

BATCHING = ModelMeta("m", 16, (TensorMeta("image", "FP32", (-1, 1, 28, 28)), TensorMeta("ids", "INT64", (-1, -1))), ())
FIXED = ModelMeta("f", 0, (TensorMeta("x", "FP32", (3, 4)),), ())


def test_shapes_come_from_metadata_with_batch_and_given_dynamic_dims() -> None:
    shapes = resolve_shapes(BATCHING, 8, {"ids": (5,)})
    assert shapes == {"image": (8, 1, 28, 28), "ids": (8, 5)}
    assert resolve_shapes(FIXED, 1, {}) == {"x": (3, 4)}


@pytest.mark.parametrize(
    ("meta", "batch", "given", "message"),
    [
        (BATCHING, 8, {}, "--shape ids:N"),
        (BATCHING, 32, {"ids": (5,)}, "exceeds the max_batch_size 16 of model 'm'"),
        (BATCHING, 1, {"ids": (5,), "nope": (1,)}, "unknown input(s) nope"),
        (BATCHING, 1, {"image": (1, 28, 27), "ids": (5,)}, "does not fit"),
        (FIXED, 2, {}, "does not batch"),
    ],
)
def test_shape_errors_say_what_to_do(meta: ModelMeta, batch: int, given: dict, message: str) -> None:
    with pytest.raises(GeneratorError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_shapes(meta, batch, given)


def test_parse_shapes() -> None:
    assert parse_shapes(["ids:5", "image:1,28,28"]) == {"ids": (5,), "image": (1, 28, 28)}
    assert parse_shapes(None) == {}
    for bad in ("ids", "ids:", "ids:0", "ids:a,b", ":3"):
        with pytest.raises(GeneratorError, match="NAME:D1,D2"):
            parse_shapes([bad])


@pytest.mark.parametrize("datatype", ["FP32", "FP16", "BF16", "INT8", "INT64", "UINT8", "BOOL", "BYTES"])
def test_random_data_has_the_wire_dtype_and_shape(datatype: str) -> None:
    from tritonclient.utils import np_to_triton_dtype

    array = random_array(datatype, (2, 3), np.random.default_rng(0))
    assert array.shape == (2, 3)
    assert np_to_triton_dtype(array.dtype) == datatype
    raw = raw_bytes(array, datatype)
    assert raw.dtype == np.uint8 and raw.size > 0


def test_bytes_tensors_serialise_with_length_prefixes() -> None:
    raw = raw_bytes(np.array([b"ab", b"c"], dtype=np.object_), "BYTES")
    assert raw.tobytes() == b"\x02\x00\x00\x00ab\x01\x00\x00\x00c"


def test_urls_and_locality() -> None:
    assert host_port("http://127.0.0.1:8000/") == "127.0.0.1:8000"
    assert host_port("grpc://h:8001") == "h:8001" and host_port("h:8001") == "h:8001"
    assert is_local("localhost:1") and not is_local("10.0.0.2:8001")
    with pytest.raises(GeneratorError, match="host:port"):
        host_port("http://nohost")


def test_cuda_shared_memory_is_refused_clearly_without_a_gpu() -> None:
    try:
        import tritonclient.utils.cuda_shared_memory  # noqa: F401
    except Exception:
        with pytest.raises(GeneratorError, match="--shared-memory cuda needs an NVIDIA GPU"):
            _shm_module("cuda")
    else:
        pytest.skip("cuda-python is installed here: CUDA shared memory is available")


def test_settings_are_checked() -> None:
    with pytest.raises(GeneratorError, match="max_windows must be at least 3"):
        BenchSettings(max_windows=2)
    with pytest.raises(GeneratorError, match="at least one concurrency or request rate"):
        BenchSettings(concurrency=(), request_rates=())
    with pytest.raises(GeneratorError, match="protocol"):
        BenchSettings(protocol="udp")
    assert BenchSettings(concurrency=(1,), request_rates=(5.0,)).levels() == [("concurrency", 1.0), ("request_rate", 5.0)]


def test_settings_from_the_spec_with_overrides() -> None:
    from generator.spec.stages import Benchmark

    settings = BenchSettings.from_benchmark(Benchmark(concurrency=[2, 4], batch_size=8), concurrency=(16,), window_s=None)
    assert settings.concurrency == (16,) and settings.batch_size == 8 and settings.window_s == 2.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench"], "give a spec"),
        (["bench", "--model-name", "m"], "needs --url"),
        (["bench", "spec.yaml", "--model-name", "m"], "with a spec use --model"),
        (["bench", "--url", "127.0.0.1:1", "--model-name", "m", "--max-windows", "2"], "max_windows must be at least 3"),
    ],
)
def test_cli_user_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_rejects_bad_levels(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--url", "h:1", "--model-name", "m", "--concurrency", "0,4"])
    assert exc.value.code == 2 and "positive integers" in capsys.readouterr().err


def test_cli_unreachable_server_is_a_user_error(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(["bench", "--url", f"127.0.0.1:{port}", "--model-name", "m", "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == EXIT_USER_ERROR
    assert f"cannot reach Triton at 127.0.0.1:{port} over grpc" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
