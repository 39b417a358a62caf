# One command to set up and run, one to test. Everything lives in .venv/ (made on first use).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint openapi bench clean

run: $(VENV)/.installed ## Set up, migrate, load the demo catalog and start all three services
	$(BIN)/pilotmatch up --demo

test: $(VENV)/.installed ## Run the whole test suite on SQLite and PostgreSQL
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(VENV)/.installed ## ruff and mypy
	$(BIN)/ruff check services tests bench scripts migrations
	$(BIN)/ruff format --check services tests bench scripts migrations
	$(BIN)/mypy services

openapi: $(VENV)/.installed ## Regenerate the committed OpenAPI documents in openapi/
	$(BIN)/python scripts/export_openapi.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("pilotmatch needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
