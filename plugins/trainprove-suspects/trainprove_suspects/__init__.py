"""Suspect adapters for models you only hold as an ONNX file or reach through an HTTP API."""

__version__ = "0.1.0"
