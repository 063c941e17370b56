"""Deployment: ONNX export of a model folder, and an ONNX Runtime runner with the model's call shape.

onnx and onnxruntime are optional (`pip install 'bertkit[onnx]'`); they are imported only when an
export or the onnx backend runs.
"""

from bertkit.export.folder import export_onnx
from bertkit.export.graph import TASKS
from bertkit.export.runner import OnnxModel, load_onnx

__all__ = ["TASKS", "OnnxModel", "export_onnx", "load_onnx"]
