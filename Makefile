# outflow: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export OUTFLOW_WAREHOUSE ?= $(CURDIR)/warehouse/outflow.duckdb
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DBT_PROFILES_DIR ?= $(CURDIR)/dbt_project
PROFILES ?= 5000
SEED ?= 42
# The generated world starts today (UTC); dbt's "now" is pinned to it so windows line up.
START ?= $(shell date -u +%F)

.PHONY: install demo test dev parse build generate summary clean bench

install: $(STAMP)

# Pinned: requirements.lock constrains every transitive version.
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $(STAMP)

parse: $(STAMP)
	$(BIN)/dbt parse --quiet

generate: $(STAMP)
	$(BIN)/outflow generate --profiles $(PROFILES) --seed $(SEED)

build: $(STAMP)
	$(BIN)/dbt build --quiet

summary: $(STAMP)
	$(BIN)/outflow summary

demo: $(STAMP)
	mkdir -p $(dir $(OUTFLOW_WAREHOUSE))
	@# The sandboxes start empty: so does the demo's sync state (only in the default warehouse).
	$(if $(filter $(CURDIR)/warehouse/outflow.duckdb,$(OUTFLOW_WAREHOUSE)),rm -rf warehouse/outflow.duckdb warehouse/outflow.duckdb.wal warehouse/outbox)
	$(BIN)/outflow generate --profiles $(PROFILES) --seed $(SEED) --start-date $(START)
	$(BIN)/dbt build --quiet --vars "{outflow_as_of: '$(START)'}"
	$(BIN)/outflow summary
	scripts/demo_syncs.sh $(START)

test: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -m pytest

# Scale benchmark (not part of `make test`): generate SIZE profiles, full build, syncs, then a
# day later the incremental build and syncs again. Table on stdout, JSON in bench/results/.
SIZE ?= 1000000
bench: $(STAMP)
	$(BIN)/python bench/scale_bench.py --size $(SIZE)

dev: $(STAMP) parse
	mkdir -p $(DAGSTER_HOME) $(dir $(OUTFLOW_WAREHOUSE))
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf target logs .pytest_cache .dagster_home warehouse
