"""Stage: deployable model files. ONNX for the CPU targets, TensorRT plans for target: tensorrt.

`build_variant(rv, source) -> Artifact` is the stage function. The TensorRT part is split so it can
be tested without TensorRT: `builder_plan` (pure: spec + TensorRT version -> `BuildPlan`) and
`apply_plan(trt, plan, onnx_path) -> bytes` (the TensorRT calls). `tensorrt` is imported only when a
tensorrt variant is built (`tensorrt_env.load_tensorrt`).
"""

from .apply import apply_plan
from .builder import build_variant
from .inspection import engine_signature, plan_signature
from .plan import BuildPlan, InputShapes, builder_plan
from .tensorrt_env import load_tensorrt

__all__ = [
    "BuildPlan", "InputShapes", "apply_plan", "build_variant", "builder_plan", "engine_signature",
    "load_tensorrt", "plan_signature",
]
