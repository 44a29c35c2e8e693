"""The simulator: memory layout and performance of TensorRT-LLM in-flight batching, without a GPU."""
