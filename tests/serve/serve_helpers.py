"""Tiny real models and hand-written Triton repositories for the serve/compare tests.

The repositories are written by hand (config.pbtxt text + the real model.py template), so these
tests exercise the server and the template without depending on the render stage.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "templates" / "python_model.py.j2"

FEATURES, CLASSES = 8, 6


def linear_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (FEATURES, CLASSES)).astype(np.float32), rng.normal(0, 0.1, (CLASSES,)).astype(np.float32)


def _save(graph: Any, path: Path) -> Path:
    """A checked opset-17 model (IR 8, which the bundled onnxruntime reads) from a graph."""
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_linear(path: Path, *, int8: bool = False, seed: int = 0) -> Path:
    """x [N, 8] fp32 -> logits [N, 6]; with int8, Q/DQ on x (scale 1/127) and int8 weights."""
    from onnx import TensorProto, helper, numpy_helper

    weights, bias = linear_weights(seed)
    inits = [numpy_helper.from_array(bias, "b")]
    nodes = []
    x, w = "x", "W"
    if int8:
        w_scale = np.float32(np.abs(weights).max() / 127.0)
        inits += [
            numpy_helper.from_array(np.array(1.0 / 127.0, dtype=np.float32), "x_scale"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "zero"),
            numpy_helper.from_array(np.clip(np.rint(weights / w_scale), -127, 127).astype(np.int8), "W_q"),
            numpy_helper.from_array(np.array(w_scale, dtype=np.float32), "W_scale"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "x_scale", "zero"], ["x_q"]),
            helper.make_node("DequantizeLinear", ["x_q", "x_scale", "zero"], ["x_dq"]),
            helper.make_node("DequantizeLinear", ["W_q", "W_scale", "zero"], ["W_dq"]),
        ]
        x, w = "x_dq", "W_dq"
    else:
        inits.append(numpy_helper.from_array(weights, "W"))
    nodes += [helper.make_node("MatMul", [x, w], ["mm"]), helper.make_node("Add", ["mm", "b"], ["logits"])]
    graph = helper.make_graph(
        nodes, "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", FEATURES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        initializer=inits,
    )
    return _save(graph, path)


def make_rowsum(path: Path) -> Path:
    """x [N, K] fp32 (K dynamic) -> s [N, 1] = sum over K, and n [N, 1] = the N onnxruntime ran with.

    `n` shows whether the model concatenated the requests of a dynamic batch: a request of one
    sample that was run together with others gets n > 1.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["rows"], axis=0),
        helper.make_node("Cast", ["rows"], ["rows_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["s", "nought"], ["s0"]),
        helper.make_node("Add", ["s0", "rows_f"], ["n"]),
    ]
    graph = helper.make_graph(
        nodes, "rowsum",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "K"])],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, ["N", 1]), helper.make_tensor_value_info("n", TensorProto.FLOAT, ["N", 1])],
        initializer=[
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "nought"),
        ],
    )
    return _save(graph, path)


def model_source() -> str:
    """The template rendered the way the render stage does (it takes no variables)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(TEMPLATE.read_text()).render()


def write_model(
    repo: Path, name: str, onnx_file: Path, *, inputs: list[tuple[str, list[int]]], outputs: list[tuple[str, list[int]]],
    max_batch_size: int = 8, delay_us: int = 0, extra: str = "",
) -> Path:
    """One python-onnxruntime model folder: config.pbtxt, 1/model.py, 1/model.onnx."""
    folder = repo / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "1" / "model.onnx").write_bytes(onnx_file.read_bytes())
    (folder / "1" / "model.py").write_text(model_source())

    def tensors(items: list[tuple[str, list[int]]]) -> str:
        return ", ".join(f'{{ name: "{n}" data_type: TYPE_FP32 dims: [ {", ".join(map(str, d))} ] }}' for n, d in items)

    batching = f"dynamic_batching {{ max_queue_delay_microseconds: {delay_us} }}\n" if max_batch_size else ""
    (folder / "config.pbtxt").write_text(
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: {max_batch_size}\n'
        f"input [ {tensors(inputs)} ]\noutput [ {tensors(outputs)} ]\n"
        "instance_group [ { kind: KIND_CPU count: 1 } ]\n" + batching +
        'parameters { key: "onnx_file" value: { string_value: "model.onnx" } }\n'
        'parameters { key: "intra_op_threads" value: { string_value: "1" } }\n'
        'parameters { key: "inter_op_threads" value: { string_value: "1" } }\n' + extra
    )
    return folder


def write_linear_pair(repo: Path, work: Path, prefix: str = "lin", *, delay_us: int = 0) -> None:
    """`<prefix>_fp32` and `<prefix>_int8` (the names the spec gives model `prefix`'s variants)."""
    work.mkdir(parents=True, exist_ok=True)
    for precision in ("fp32", "int8"):
        onnx_file = make_linear(work / f"{prefix}_{precision}.onnx", int8=precision == "int8")
        write_model(repo, f"{prefix}_{precision}", onnx_file, inputs=[("x", [FEATURES])], outputs=[("logits", [CLASSES])], delay_us=delay_us)


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    """The same model computed locally, for the expected values."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def group_alive(pgid: int) -> bool:
    """True while any process of the group `pgid` exists (server or python-backend stub)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stub_pids(server_pid: int) -> list[int]:
    """Python-backend stub processes started by a tritonserver (its children)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    try:
        return [int(p) for p in children.read_text().split()]
    except OSError:
        return []


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def processes_using(path: Path) -> list[int]:
    """Live processes whose command line mentions `path` (a server on that repository, its stubs)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline and pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found
