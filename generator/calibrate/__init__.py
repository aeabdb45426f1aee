"""Stage 1: calibration. FP32 ONNX + calibration data -> per-tensor INT8 thresholds (amax).

`calibrate_variant(rv)` streams the data through the model with onnxruntime, keeps a histogram of
|x| per activation tensor that the Q/DQ placement needs, picks thresholds (entropy with a guard,
minmax, percentile or mse), and writes a TensorRT calibration cache, a JSON manifest and a report
under `rv.workdir / "calibration"`. `load_batches` is the data loader shared with evaluation.
"""

from .cache import CalibrationCache, check_cache_matches, format_cache, read_cache
from .calibrators import AmaxResult, AmaxSettings, compute_amax
from .histogram import Histogram
from .run import CalibrationResult, calibrate_model, calibrate_variant

__all__ = [
    "AmaxResult", "AmaxSettings", "CalibrationCache", "CalibrationResult", "Histogram", "calibrate_model",
    "calibrate_variant", "check_cache_matches", "compute_amax", "format_cache", "read_cache",
]
