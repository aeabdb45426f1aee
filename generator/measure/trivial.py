"""A trivial Triton repository for measuring the load generator itself (harness benchmark, tests).

`add`: INPUT0 fp32 [batch, 16] -> OUTPUT0 = INPUT0 + 1 (python backend, dynamic batching, max batch
64). The server does almost nothing per request, so the client's own cost is what shows; `add_dyn`
is the same with a dynamic non-batch dimension (requests need an explicit shape).
"""

from __future__ import annotations

from pathlib import Path

MODEL_PY = '''\
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x + 1.0)]))
        return responses
'''

CONFIG = '''\
name: "{name}"
backend: "python"
max_batch_size: 64
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ {dims} ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ {dims} ] }} ]
dynamic_batching {{ }}
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
'''

TRIVIAL_MODELS = {"add": "16", "add_dyn": "-1"}  # model name -> dims without batch


def write_trivial_repository(root: Path, models: tuple[str, ...] = tuple(TRIVIAL_MODELS)) -> Path:
    """Write the chosen trivial models into a new repository folder `root`; returns `root`."""
    for name in models:
        version = root / name / "1"
        version.mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(CONFIG.format(name=name, dims=TRIVIAL_MODELS[name]))
        (version / "model.py").write_text(MODEL_PY)
    return root
