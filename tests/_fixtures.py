"""Locating the real-weight fixture files that the test extras install (``pip install --no-deps``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def data_file(package: str, *parts: str) -> Path:
    """A data file shipped in an installed package, found without importing the package; the
    calling test is skipped, saying what to install, when the package or file is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        pytest.skip(f"fixture package {package!r} is not installed (pip install --no-deps {package})")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"fixture file {path} is missing")
    return path


def ocr_model(name: str) -> Path:
    """A PP-OCR ONNX model of ``rapidocr-onnxruntime==1.4.4``."""
    return data_file("rapidocr_onnxruntime", "models", name)
