# The README's two set-up commands are `make demo` and `make test`; both bootstrap
# everything they need (venv, pinned requirements, Airflow metadata DB) from nothing.
# `make airflow` bootstraps the same way, then runs smsdrop as a service (UI on :8080).
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
export AIRFLOW_HOME := $(CURDIR)
export AIRFLOW__CORE__UNIT_TEST_MODE ?= False
STAMP := $(VENV)/.installed

.PHONY: bootstrap bytecode migrate test demo airflow bench lint clean
bootstrap: $(STAMP) bytecode migrate

# Our own modules as bytecode, as pip leaves an installed package: an editable install has
# none, and with PYTHONDONTWRITEBYTECODE set (as on this project's machines) every command
# would compile them again (~0.1 s a start). compileall skips what is up to date.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q include dags plugins > /dev/null

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

# Always: `airflow db migrate` is idempotent and takes seconds, and a DB file left by an
# interrupted first run exists without being migrated ("Database migration required").
migrate: $(STAMP)
	@mkdir -p var
	$(BIN)/airflow db migrate > var/db-migrate.log 2>&1 || { tail -20 var/db-migrate.log; exit 1; }

# pytest-xdist workers: the deployment tests mostly wait on Airflow's timers, so 3 at once
# on 2 cores (docs/PERFORMANCE.md, "The test suite"); `make test TEST_WORKERS=0`: one process.
TEST_WORKERS ?= 3
test: bootstrap
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

demo: bootstrap
	$(BIN)/python -m smsdrop.demo

airflow: bootstrap
	$(BIN)/python -m smsdrop.deploy

bench: bootstrap
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check include/smsdrop tests bench dags plugins

clean:
	rm -rf $(VENV) var
