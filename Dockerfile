# trtbench inside NVIDIA's TensorRT-LLM release container. The image brings the GPU path (trtllm-bench,
# trtllm-eval, ModelOpt, CUDA torch, at the versions NVIDIA tested together); trtbench adds only what the image
# lacks and never moves one of its packages. Not built in trtbench's CI (the base image cannot be pulled there).
#   docker build --build-arg TRTLLM_VERSION=1.2.0 -t trtbench .
ARG TRTLLM_VERSION=1.2.0
FROM nvcr.io/nvidia/tensorrt-llm/release:${TRTLLM_VERSION}

WORKDIR /opt/trtbench
COPY pyproject.toml README.md ./
COPY trtbench ./trtbench
# Every package already in the image is a constraint: pip adds what is missing, and fails rather than up- or
# downgrade a pinned one.
RUN python3 -m pip list --format=freeze --exclude-editable > /tmp/image-constraints.txt \
    && python3 -m pip install --no-cache-dir --constraint /tmp/image-constraints.txt . \
    && trtbench --version

WORKDIR /work
ENTRYPOINT ["trtbench"]
CMD ["--help"]
