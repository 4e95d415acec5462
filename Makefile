# Set-up and main jobs. `make run` and `make test` work on a fresh machine:
# they create .venv, install the project (with the CPU build of torch), the
# Fashion-MNIST data set and Graphviz (for `archc graph`), then do their job.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SPEC ?= specs/googlenet.yaml
# torch 2.13.0 is the CPU wheel available on this machine kind; an unpinned or
# newer torch would pull a multi-GB CUDA build.
TORCH := torch==2.13.0
PYTEST_FLAGS ?=

.PHONY: run test test-slow lint format golden schema data graphviz bench clean

run: $(STAMP) data graphviz
	$(BIN)/archc shapes $(SPEC)
	$(BIN)/archc build $(SPEC)

test: $(STAMP) data graphviz
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_FLAGS)

test-slow: $(STAMP) data graphviz
	$(BIN)/python -m pytest -m slow $(PYTEST_FLAGS)

lint: $(STAMP)
	$(BIN)/ruff check archcompile tests scripts bench
	$(BIN)/ruff format --check archcompile tests scripts bench

format: $(STAMP)
	$(BIN)/ruff format archcompile tests scripts bench
	$(BIN)/ruff check --fix archcompile tests scripts bench

# Side-by-side, interleaved benchmarks: one table of ratios (docs/performance.md).
# BENCH_QUICK=1 make bench: a smoke run of under two minutes.
bench: $(STAMP)
	$(BIN)/python -m bench.run

# Re-record the golden generated sources in tests/golden/ after an intended change.
golden: $(STAMP)
	ARCHC_UPDATE_GOLDEN=1 $(BIN)/python -m pytest tests/test_codegen.py -k golden -q

# Re-record schema/archc.schema.json (the editor schema) after a change to the language.
schema: $(STAMP)
	$(BIN)/archc schema -o schema/archc.schema.json

data:
	@bash scripts/install-data.sh

# Graphviz's `dot` program (Debian package graphviz), which `archc graph` runs
graphviz:
	@bash scripts/install-graphviz.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

clean:
	rm -rf $(VENV) build .pytest_cache
