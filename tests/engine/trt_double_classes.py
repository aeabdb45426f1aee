"""The double's network and engine classes (tensors, layers, the network; execution context, inspector, engine).

Made per `make_trt` call, like the rest of the double, from that call's enums and call log; kept here
so trt_double.py stays readable. Names and parameters mirror the real binding (checked by
test_trt_surface.py against the stubs index).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.engine import trt_double_network as net


def network_classes(DataType: Any, LayerType: Any) -> tuple[type, type, type]:
    """ITensor, ILayer, INetworkDefinition over the parser's description (`trt_double_network.parse_onnx`)."""
    _Member = Any

    class ITensor:
        def __init__(self, name: str, description: dict[str, Any], *, is_input: bool, is_output: bool) -> None:
            self._name, self._description = name, description
            self._is_input, self._is_output = is_input, is_output

        @property
        def name(self) -> str:
            return self._name

        @property
        def dtype(self) -> _Member:
            return getattr(DataType, self._description.get("dtype", "FLOAT"))

        @property
        def shape(self) -> tuple[int, ...]:
            return tuple(self._description.get("shape", ()))

        @property
        def is_network_input(self) -> bool:
            return self._is_input

        @property
        def is_network_output(self) -> bool:
            return self._is_output

        @property
        def is_shape_tensor(self) -> bool:
            return False

        @property
        def is_execution_tensor(self) -> bool:
            return True

    class ILayer:
        def __init__(self, network: "INetworkDefinition", description: dict[str, Any]) -> None:
            self._network, self._description = network, description

        @property
        def name(self) -> str:
            return self._description["name"]

        @property
        def type(self) -> _Member:
            return getattr(LayerType, self._description["type"])

        @property
        def num_inputs(self) -> int:
            return len(self._description["inputs"])

        @property
        def num_outputs(self) -> int:
            return len(self._description["outputs"])

        def get_input(self, index: int) -> ITensor:
            return self._network._tensor(self._description["inputs"][index])

        def get_output(self, index: int) -> ITensor:
            return self._network._tensor(self._description["outputs"][index])

    class INetworkDefinition:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self._io: dict[str, Any] = {"inputs": [], "outputs": [], "layers": [], "tensors": {}}

        def _tensor(self, name: str) -> ITensor:
            inputs = {t["name"] for t in self._io["inputs"]}
            outputs = {t["name"] for t in self._io["outputs"]}
            return ITensor(name, self._io["tensors"].get(name, {}), is_input=name in inputs, is_output=name in outputs)

        @property
        def num_layers(self) -> int:
            return len(self._io["layers"])

        @property
        def num_inputs(self) -> int:
            return len(self._io["inputs"])

        @property
        def num_outputs(self) -> int:
            return len(self._io["outputs"])

        def get_layer(self, index: int) -> ILayer:
            return ILayer(self, self._io["layers"][index])

        def get_input(self, index: int) -> ITensor:
            return self._tensor(self._io["inputs"][index]["name"])

        def get_output(self, index: int) -> ITensor:
            return self._tensor(self._io["outputs"][index]["name"])


    return ITensor, ILayer, INetworkDefinition


def engine_classes(
    record: Callable[..., None], TensorIOMode: Any, DataType: Any, LayerInformationFormat: Any
) -> tuple[type, type, type]:
    """IExecutionContext, EngineInspector, ICudaEngine over the builder's JSON description."""
    _Member = Any

    class IExecutionContext:
        def __init__(self, engine: "ICudaEngine") -> None:
            self._engine = engine
            self._shapes: dict[str, tuple[int, ...]] = {}

        def set_input_shape(self, name: str, shape: Any) -> bool:
            record("IExecutionContext.set_input_shape", name, tuple(shape))
            self._shapes[name] = tuple(shape)
            return True

        @property
        def all_binding_shapes_specified(self) -> bool:
            inputs = [t["name"] for t, mode in self._engine._tensors if mode is TensorIOMode.INPUT]
            return all(name in self._shapes and -1 not in self._shapes[name] for name in inputs)

    class EngineInspector:
        def __init__(self, engine: "ICudaEngine") -> None:
            self._engine = engine
            self.execution_context: IExecutionContext | None = None

        def get_engine_information(self, format: _Member) -> str:
            record("EngineInspector.get_engine_information", format.name)
            engine = self._engine
            bindings = [t["name"] for t, _ in engine._tensors]
            if not engine._detailed:  # LAYER_NAMES_ONLY (the default): names, no formats
                layers: list[Any] = [layer["Name"] for layer in engine._layers]
            else:
                dynamic = any(-1 in t["shape"] for t, _ in engine._tensors)
                shaped = self.execution_context is not None and self.execution_context.all_binding_shapes_specified
                layers = net.resolve_formats(engine._layers, dynamic, shaped)
            if format is LayerInformationFormat.JSON:
                return json.dumps({"Layers": layers, "Bindings": bindings})
            return "\n".join(layer if isinstance(layer, str) else layer["Name"] for layer in layers)

    class ICudaEngine:
        def __init__(self, description: dict[str, Any]) -> None:
            self._layers = description.get("layers", [])
            self._detailed = description.get("detailed", False)
            io = description["io"]
            self._tensors = [(t, TensorIOMode.INPUT) for t in io["inputs"]] + [(t, TensorIOMode.OUTPUT) for t in io["outputs"]]
            self._profiles = description["profiles"] or [{}]

        @property
        def num_io_tensors(self) -> int:
            return len(self._tensors)

        @property
        def num_optimization_profiles(self) -> int:
            return len(self._profiles)

        def _find(self, name: str) -> tuple[dict[str, Any], _Member]:
            return next((t, mode) for t, mode in self._tensors if t["name"] == name)

        def get_tensor_name(self, index: int) -> str:
            return self._tensors[index][0]["name"]

        def get_tensor_mode(self, name: str) -> _Member:
            return self._find(name)[1]

        def get_tensor_dtype(self, name: str) -> _Member:
            return getattr(DataType, self._find(name)[0]["dtype"])

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return tuple(self._find(name)[0]["shape"])

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
            return [tuple(s) for s in self._profiles[profile_index][name]]

        def create_execution_context(self) -> IExecutionContext:
            return IExecutionContext(self)

        def create_engine_inspector(self) -> EngineInspector:
            return EngineInspector(self)


    return IExecutionContext, EngineInspector, ICudaEngine
