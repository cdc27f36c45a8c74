# The two commands of the README. Each installs what it needs itself.
PY ?= python3

.PHONY: demo test lint install install-dev

install:
	$(PY) -m pip install --quiet -e ".[demo]"

install-dev:
	$(PY) -m pip install --quiet -e ".[dev]"

demo: install
	hybridrec demo

lint:
	ruff check src tests benchmarks scripts
	ruff format --check src tests benchmarks scripts
	mypy src
	PYTHONPATH=src lint-imports
	$(PY) scripts/check_structure.py

test: install-dev lint
	$(PY) -m pytest -q
