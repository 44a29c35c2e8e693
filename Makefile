# The two set-up commands a fresh clone needs: `make sweep` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
SWEEP ?= sweeps/h100_grid.yaml
PREC ?= fp8

.PHONY: install test lint sweep smoke latency engine calibrate clean slurm-up slurm-down

# A local one-node Slurm cluster with 8 fake GPUs for the Slurm tests (scripts/slurm-up.sh: installs Debian's
# slurm-wlm if missing, which needs root and apt-get). `make test` starts it; REQUIRE_SLURM=1 makes that failing fatal.
SLURM_DIR ?= $(CURDIR)/.slurm
REQUIRE_SLURM ?=
# Headless Chromium for tests/test_browser.py (scripts/browser-setup.sh: Debian's chromium, installed if missing, the
# same way); without it that test skips, unless REQUIRE_BROWSER=1, which makes a missing browser fatal.
REQUIRE_BROWSER ?=

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
	$(BIN)/hadolint Dockerfile

# Brings the local Slurm cluster up first and exports SLURM_CONF; without it the Slurm tests skip, the rest still run.
test: lint
	@if out=$$(bash scripts/slurm-up.sh '$(SLURM_DIR)' 2>&1); then \
		printf '%s\n' "$$out"; export SLURM_CONF='$(SLURM_DIR)/slurm.conf'; \
	else \
		printf '%s\n' "$$out"; \
		echo "make test: the Slurm tests will be skipped: no local Slurm cluster ($$(printf '%s\n' "$$out" | tail -n 1))"; \
		if [ -n '$(REQUIRE_SLURM)' ]; then exit 1; fi; \
		unset SLURM_CONF; \
	fi; \
	if chromium=$$(bash scripts/browser-setup.sh); then export TRTBENCH_CHROMIUM="$$chromium"; else \
		echo "make test: the browser test will be skipped: no Chromium"; \
		if [ -n '$(REQUIRE_BROWSER)' ]; then exit 1; fi; \
	fi; \
	export REQUIRE_BROWSER='$(REQUIRE_BROWSER)'; \
	echo '$(BIN)/pytest'; $(BIN)/pytest

# The inner loop: ruff, mypy and the tests that need no Slurm cluster, ModelOpt, browser or wheel build and start no
# real process tree nor take many seconds (markers: tests/conftest.py), on 2 pytest-xdist workers; `make test` runs
# them all. `make check CHECK_ARGS=` runs them in one process. Bytecode is kept (__pycache__, ignored by git) even
# where the environment says PYTHONDONTWRITEBYTECODE: compiling every module and test again costs ~30 s a run.
CHECK_MARKERS ?= not (slow or slurm or modelopt or browser or wheel or measured or heavy)
CHECK_ARGS ?= -n 2
.PHONY: check
check: $(TEST_STAMP)
	$(BIN)/ruff check trtbench tests benchmarks
	$(BIN)/mypy trtbench
	env -u SLURM_CONF -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -m '$(CHECK_MARKERS)' $(CHECK_ARGS)

slurm-up:
	@bash scripts/slurm-up.sh '$(SLURM_DIR)'

slurm-down:
	@bash scripts/slurm-down.sh '$(SLURM_DIR)'

sweep: install
	$(BIN)/trtbench sweep $(SWEEP)

smoke: install
	$(BIN)/trtbench sweep sweeps/smoke.yaml

# A concurrency ladder (load curves, TTFT/TPOT percentiles), then the best point under an SLA.
latency: install
	$(BIN)/trtbench sweep sweeps/h100_latency.yaml
	$(BIN)/trtbench sla runs/h100_latency --ttft-p95-ms 200 --tpot-p95-ms 15

# The engine $(SWEEP) needs, at precision $(PREC) (KV cache dtype as the spec says), for the installed
# TensorRT-LLM (the newest without one): a TensorRT engine, or on the PyTorch path the checkpoint to load,
# quantized by ModelOpt for fp8 and nvfp4 (nvfp4: a Blackwell SWEEP, PyTorch path only). Built once under
# engines/, then reused.
engine: install
	$(BIN)/trtbench build $(SWEEP) --precision $(PREC) $(if $(MODEL),--model $(MODEL)) \
		$(if $(ENGINES),--engines-dir $(ENGINES)) $(if $(DRY_RUN),--dry-run)

# Refit the simulator's factors jointly to NVIDIA's H100 and H200 tables (run at fraction 0.95), cross-validate
# the fit (refitted with each TP size, GPU and model size held out: tens of minutes) and commit the result.
# The same command with --cv instead of --fit adds only the cross-validation to the committed factors.
calibrate: install
	$(BIN)/trtbench calibrate trtbench/data/calibration_h100_sxm_llama31_8b_fp8.csv \
		trtbench/data/published_h200_sxm_fp8.csv trtbench/data/published_moe_blackwell.csv \
		--kv-fraction 0.95 --fit --write

clean:
	rm -rf $(VENV) runs build *.egg-info
