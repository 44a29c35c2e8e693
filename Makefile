# The two set-up commands a fresh clone needs: `make sweep` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
SWEEP ?= sweeps/h100_grid.yaml
PREC ?= fp8

.PHONY: install test lint sweep smoke engine calibrate clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

# The tests also quantize a tiny model with the real ModelOpt on CPU: the `test` extra (torch's CPU build here).
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $(TEST_STAMP)

lint: $(TEST_STAMP)
	$(BIN)/ruff check trtbench tests benchmarks
	$(BIN)/mypy trtbench

test: lint
	$(BIN)/pytest

sweep: install
	$(BIN)/trtbench sweep $(SWEEP)

smoke: install
	$(BIN)/trtbench sweep sweeps/smoke.yaml

# The engine $(SWEEP) needs, at precision $(PREC) (KV cache dtype as the spec says), for the installed
# TensorRT-LLM (the newest without one): a TensorRT engine, or on the PyTorch path the checkpoint to load,
# quantized by ModelOpt for fp8. Built once under engines/, then reused.
engine: install
	$(BIN)/trtbench build $(SWEEP) --precision $(PREC) $(if $(MODEL),--model $(MODEL)) \
		$(if $(ENGINES),--engines-dir $(ENGINES)) $(if $(DRY_RUN),--dry-run)

# Refit the simulator's factors to NVIDIA's H100 table (run at fraction 0.95) and commit the result.
calibrate: install
	$(BIN)/trtbench calibrate trtbench/data/calibration_h100_sxm_llama31_8b_fp8.csv --gpu h100-sxm \
		--kv-fraction 0.95 --fit --write

clean:
	rm -rf $(VENV) runs build *.egg-info
