# CreditLab: `make demo` runs the main job, `make test` runs the suite.
# Both create or refresh .venv first, so they work on a bare machine with python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

# Flower: no telemetry, no update check, no runtime dependency installation.
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: venv demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/creditlab run examples/default_credit.toml
	$(BIN)/creditlab city --enterprises 12000 --seed 7 --workdir runs/city
	$(BIN)/python examples/serve_city.py --workdir runs/city

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf runs mlflow.db mlruns mlartifacts .pytest_cache
