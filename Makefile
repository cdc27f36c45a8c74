# The two commands of the README. Each installs what it needs itself: into the active virtual
# environment when there is one ($VIRTUAL_ENV), else into a project-local .venv that the first
# command creates with `python3 -m venv` (distribution Pythons refuse a system-wide pip install,
# PEP 668). `make test VENV=DIR` picks another environment.
VENV ?= $(or $(VIRTUAL_ENV),.venv)
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Recipes run as in the activated environment, so that the processes they start (the
# hybridrec command, Spark's Python workers) find its python and packages first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test lint install install-dev

ifeq ($(VENV),.venv)
$(PY):
	python3 -m venv .venv || { rm -rf .venv; \
	  echo "python3 -m venv failed (Debian/Ubuntu: apt install python3-venv)" >&2; exit 1; }
else
$(PY):
	@echo "$(PY) does not exist: is $(VENV) a virtual environment?" >&2; exit 1
endif

install: $(PY)
	$(PY) -m pip install --quiet -e ".[demo]"

install-dev: $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"

demo: install
	$(BIN)/hybridrec demo

lint: install-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy src
	PYTHONPATH=src $(BIN)/lint-imports
	$(PY) scripts/check_structure.py

test: lint
	$(PY) -m pytest -q
