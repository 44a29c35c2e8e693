# The two set-up commands a fresh clone needs: `make sweep` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SWEEP ?= sweeps/h100_grid.yaml

.PHONY: install test lint sweep smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check trtbench tests benchmarks

test: lint
	$(BIN)/pytest

sweep: install
	$(BIN)/trtbench sweep $(SWEEP)

smoke: install
	$(BIN)/trtbench sweep sweeps/smoke.yaml

clean:
	rm -rf $(VENV) runs build *.egg-info
