"""Stage: deployable model files. ONNX for the CPU targets, TensorRT plans for target: tensorrt.

`build_variant(rv, source) -> Artifact` is the stage function. The TensorRT part is split so it can
be tested without TensorRT: `builder_plan` (pure: spec + TensorRT version -> `BuildPlan`) and
`apply_plan(trt, plan, onnx_path) -> bytes` (the TensorRT calls, after the `prebuild` checks).
`job.build_engine` is one whole build (apply, read the engine back, `layers`: what precision each
layer runs in); `child.build_isolated` runs it in a child process so a TensorRT crash cannot kill
trgen. `tensorrt` is imported only when a tensorrt variant is built (`tensorrt_env.load_tensorrt`).
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
