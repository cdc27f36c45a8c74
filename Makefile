# The two commands of the README. Each installs what it needs itself.
PY ?= python3

.PHONY: demo test lint install install-dev

install:
	$(PY) -m pip install --quiet -e .

install-dev:
	$(PY) -m pip install --quiet -e ".[dev]"

demo: install
	hybridrec demo

lint:
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	mypy src

test: install-dev lint
	$(PY) -m pytest -q
