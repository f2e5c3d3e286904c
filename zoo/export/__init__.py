"""Export of tokenizers to other runtimes (``python -m zoo export NAME --format onnx OUT/``)."""
from .onnx import EXPORTABLE_FAMILIES, ExportError, export_onnx, weights_sha256

__all__ = ["EXPORTABLE_FAMILIES", "ExportError", "export_onnx", "weights_sha256"]
