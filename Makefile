# One command each. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
RUN := scripts/with-env
ROWS ?= 20000
# Test processes (pytest-xdist): each gets its own test databases and Airflow home.
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv and install the pinned dependencies

demo: venv ## Run the demo clients end to end on the embedded warehouse (ROWS=20000)
	$(RUN) python -m demo --rows $(ROWS)

test: venv ## Run the whole test suite against real PostgreSQL and Airflow (TEST_WORKERS=2 processes)
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-unit: venv ## Run the unit tests only: no database, no PostgreSQL needed (seconds)
	eval "$$(python3 scripts/devenv.py env)" && PYTHONPATH=. $(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

bench: venv ## Measure the hot path against its baselines (ROWS=2000000), write bench-results.json
	$(RUN) python -m benchmarks --rows $(or $(BENCH_ROWS),$(if $(filter command line,$(origin ROWS)),$(ROWS),2000000)) $(BENCH_ARGS)

mutation: venv ## Break each business rule of the client SQL in turn; every break must fail a test (docs/mutations.md)
	$(RUN) python tests/mutation/run.py $(MUTATION_ARGS)

schema: venv ## Write include/clients/client.schema.json, the JSON Schema editors check client files with
	$(VENV)/bin/python -m include.etl.config --schema > include/clients/client.schema.json

lint: venv ## Ruff (with the AIR rules), format check, the package's import contracts, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=. $(VENV)/bin/lint-imports
	PYTHONPATH=. $(VENV)/bin/mypy

format: venv ## Apply ruff's fixes and formatter
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

airflow: venv ## Start the Airflow UI locally (api-server, scheduler, dag-processor, triggerer) on :8080
	$(RUN) airflow standalone

stack: venv ## The production stack without Docker: Redis, api-server, scheduler, dag-processor, triggerer, 2 Celery workers
	$(RUN) python scripts/airflow_stack.py --workers 2

psql: venv ## Open psql on the warehouse
	$(RUN) bash -c 'psql "$${AIRFLOW_CONN_WAREHOUSE/postgres:\/\//postgresql://}"'

lock: ## Re-resolve requirements*.txt into constraints.txt (in a scratch virtualenv)
	rm -rf .local/lock-venv && $(PYTHON) -m venv .local/lock-venv
	.local/lock-venv/bin/pip install --quiet -r requirements-dev.txt
	{ head -2 constraints.txt; .local/lock-venv/bin/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .local/lock-venv

stop: ## Stop the embedded PostgreSQL
	$(PYTHON) scripts/devenv.py down

clean: ## Remove the embedded database, Airflow home and demo files (keeps the venv)
	$(PYTHON) scripts/devenv.py clean
	rm -rf .local

.PHONY: help venv demo test test-unit stack bench mutation schema lint format airflow psql lock stop clean
