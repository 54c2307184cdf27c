# Every target builds its own virtual environment from pyproject.toml; only Python and make are needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The stamp names both pyproject.toml and the interpreter: `make test PYTHON=python3.13` rebuilds .venv
# for that Python instead of running another one's tools.
STAMP := $(VENV)/.installed-$(shell $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(open('pyproject.toml','rb').read()+sys.version.encode()).hexdigest()[:12])")

.PHONY: test test-floor test-newest lint types pytest demo demo-starlette fake bench mutation clean

$(STAMP):
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,demo]"
	touch $(STAMP)

# The README's test command: lint, types, tests.
test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The suite on the oldest Python and dependency versions pyproject.toml allows.
FLOOR_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python) $(shell command -v python3.11))
FLOOR_VENV ?= .venv-floor
test-floor:
	$(FLOOR_PYTHON) -m venv --clear $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLOOR_VENV)/bin/python -m pip install --quiet -c .ci/floor-constraints.txt -e ".[test]"
	$(FLOOR_VENV)/bin/python -m pytest -q -p no:cacheprovider -m "not browser" $(PYTEST_ARGS)

# The README's test command on the newest Python we support, with the newest dependency versions.
NEWEST_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) $(shell command -v python3.13))
test-newest:
	$(MAKE) test PYTHON=$(NEWEST_PYTHON) VENV=.venv-newest

demo: $(STAMP)
	$(BIN)/python -m uvicorn examples.fastapi_app.app:app --host 127.0.0.1 --port $${PORT:-8000}

demo-starlette: $(STAMP)
	$(BIN)/python -m uvicorn examples.starlette_app.app:app --host 127.0.0.1 --port $${PORT:-8000}

fake: $(STAMP)
	$(BIN)/python -m qelos_integrator_fastapi.testing --port $${PORT:-8100}

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Mutation testing of the core modules ([tool.mutmut] in pyproject.toml); not part of `make test`: it takes
# more than an hour on two cores. MUTANTS narrows it, e.g. MUTANTS='qelos_integrator_fastapi._oauth_state.*'.
MUTATION_STAMP := $(STAMP)-mutation
$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,demo,mutation]"
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run $(MUTANTS)
	$(BIN)/python tools/mutation_report.py --survivors

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .venv-newest .mypy_cache .pytest_cache .ruff_cache mutants
