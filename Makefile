# Two targets a fresh machine needs: `make demo` and `make test`.
# Each sets up .venv itself; stamps make re-runs skip the install.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo

.PHONY: demo test lint types unit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,dask]"
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/python scripts/demo.py $(DEMO)

test: $(VENV)/.test lint types unit

lint: $(VENV)/.test
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

types: $(VENV)/.test
	$(BIN)/mypy --strict src

unit: $(VENV)/.test
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) $(DEMO) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +  # numba's compiled code too
