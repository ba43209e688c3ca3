# Every target bootstraps the virtual environment it needs from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint clean

# Targets of the spec, deployment and benchmark parts live in mk/.
include $(sort $(wildcard mk/*.mk))

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(STAMP)
	$(BIN)/cluster run --fresh $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tools tests
	$(BIN)/mypy src tools

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build shared_data
