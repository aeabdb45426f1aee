"""One served model as the comparison sees it over gRPC: its inputs, outputs, batch limit, and `run`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import GeneratorError
from ..serve.handle import ServerHandle


class RemoteModel:
    """One served model as seen over gRPC: its inputs, outputs and batch limit, and `run`."""

    def __init__(self, handle: ServerHandle, client: Any, name: str) -> None:
        from tritonclient.utils import InferenceServerException, triton_to_np_dtype

        self.handle, self.client, self.name = handle, client, name
        try:
            metadata = client.get_model_metadata(name, as_json=True)
            config = client.get_model_config(name, as_json=True).get("config", {})
        except InferenceServerException as exc:
            raise handle.failure(f"reading the metadata of model {name!r}", exc) from None
        self.inputs = {t["name"]: (t["datatype"], triton_to_np_dtype(t["datatype"])) for t in metadata["inputs"]}
        self.outputs = [t["name"] for t in metadata["outputs"]]
        self.max_batch_size = int(config.get("max_batch_size", 0))

    def run(self, inputs: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
        """All outputs for a batch; split into requests of at most max_batch_size samples."""
        missing = sorted(set(self.inputs) - set(inputs))
        if missing:
            raise GeneratorError(f"evaluation data has no input {', '.join(map(repr, missing))} for model {self.name!r} (it gives: {', '.join(inputs)})")
        count = len(next(iter(inputs.values()))) if inputs else 0
        step = self.max_batch_size if self.max_batch_size > 0 else max(count, 1)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.outputs}
        for start in range(0, max(count, 1), step):
            chunk = {name: np.ascontiguousarray(np.asarray(inputs[name])[start:start + step], dtype=dtype) for name, (_, dtype) in self.inputs.items()}
            result = self._infer(chunk, what)
            for name in self.outputs:
                parts[name].append(result[name])
        return {name: np.concatenate(values, axis=0) for name, values in parts.items()}

    def _infer(self, chunk: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        requests = []
        for name, array in chunk.items():
            request = grpcclient.InferInput(name, list(array.shape), self.inputs[name][0])
            request.set_data_from_numpy(array)
            requests.append(request)
        outputs = [grpcclient.InferRequestedOutput(name) for name in self.outputs]
        try:
            response = self.client.infer(self.name, requests, outputs=outputs)
        except InferenceServerException as exc:
            raise self.handle.failure(f"running {self.name!r} on {what}", exc) from None
        return {name: response.as_numpy(name) for name in self.outputs}
