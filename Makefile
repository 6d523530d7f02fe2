# spotify-engine: the two quick-start commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
CACHE ?= $(HOME)/.cache/spotify-engine
VENV ?= $(CACHE)/venv
BIN := $(VENV)/bin
export PIP_CACHE_DIR ?= $(CACHE)/pip
STAMP := $(VENV)/.spotify-engine-installed
PYTEST_ARGS ?=

.PHONY: venv demo demo-stop test test-fast lint format typecheck neo4j-start neo4j-stop bench clean

# Create (or reuse) the cached virtualenv and install the project into it, editable, from here.
venv:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@want="$(CURDIR) $$(sha256sum pyproject.toml | cut -c1-16)"; \
	if [ "$$(cat $(STAMP) 2>/dev/null)" != "$$want" ]; then \
	  echo "installing spotify-engine into $(VENV) (first time: a few minutes, torch is large)"; \
	  $(BIN)/pip install -q --upgrade pip && \
	  $(BIN)/pip install -q -e '.[dev]' && echo "$$want" > $(STAMP); \
	fi

# The main job: local Neo4j, synthetic data, training, explanations, API.
demo: venv
	$(BIN)/spotify-engine demo

demo-stop: venv
	$(BIN)/spotify-engine demo --stop

# The test command (CI runs this through .ci/run). Tests start their own Neo4j test instance.
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy

neo4j-start: venv
	$(BIN)/spotify-engine neo4j start

neo4j-stop: venv
	$(BIN)/spotify-engine neo4j stop

bench: venv
	PYTHON=$(BIN)/python bash benchmarks/run_all.sh

clean:
	rm -rf .pytest_cache .ruff_cache .mypy_cache build *.egg-info
