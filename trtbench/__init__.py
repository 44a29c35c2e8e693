"""trtbench: which ISL/OSL/request-count configurations give the most throughput on a GPU, and which fail."""

__version__ = "0.1.0"
