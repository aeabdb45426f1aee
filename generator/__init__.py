"""trgen: a declarative path from an FP32 ONNX model to a served, measured INT8 model on Triton.

Stages, each a subpackage that takes the previous stage's typed result:
spec -> calibrate -> quantize -> build -> render -> serve -> measure.
"""

__version__ = "0.1.0"
