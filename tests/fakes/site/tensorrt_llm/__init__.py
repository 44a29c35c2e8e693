"""Stands in for TensorRT-LLM in tests: only the version, which trtbench asks the bench's Python for."""

import os

__version__ = os.environ.get("FAKE_TRTLLM_VERSION", "1.1.0")
