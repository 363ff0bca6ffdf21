# One task runner for pipegen. `make demo` and `make test` are the README's two commands;
# each sets up what it needs from the lock files first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(PYTHON) -m uv
# Airflow and KFP need disjoint kubernetes versions: one lock, three environments.
CORE := .venv
AIRFLOW := .venv-airflow
KFP := .venv-kfp
BENCH := .venv-bench
SPECS := $(sort $(wildcard specs/*.yaml))
# Step Functions has no local backend: the demo spec (local training) compiles for Airflow and KFP only.
AWS_SPECS := $(filter-out specs/demo.yaml,$(SPECS))
OUT := build

.PHONY: help uv env-core env-airflow env-kfp env-bench envs node demo test lint test-core test-airflow test-kfp golden bench clean

help:
	@echo "make demo    set up, then validate, draw and compile the example specs (and run the demo)"
	@echo "make test    set up every environment, then lint, type-check and run all tests"
	@echo "make golden  regenerate golden files (review the diff before committing)"
	@echo "make bench   run the benchmarks and rewrite BENCHMARKS.md's figures"

uv:
	@$(UV) --version 2>/dev/null | grep -qF "$(UV_VERSION)" || $(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

env-core: uv
	@UV_PROJECT_ENVIRONMENT=$(CORE) $(UV) sync --frozen --quiet

env-airflow: uv
	@UV_PROJECT_ENVIRONMENT=$(AIRFLOW) $(UV) sync --frozen --quiet --group airflow

env-kfp: uv
	@UV_PROJECT_ENVIRONMENT=$(KFP) $(UV) sync --frozen --quiet --group kfp

env-bench: uv
	@UV_PROJECT_ENVIRONMENT=$(BENCH) $(UV) sync --frozen --quiet --group bench

envs: env-core env-airflow env-kfp

node: tools/node/node_modules/.package-lock.json

tools/node/node_modules/.package-lock.json: tools/node/package-lock.json
	cd tools/node && npm ci --no-audit --no-fund --loglevel=error

demo: env-core
	$(CORE)/bin/pipegen validate $(SPECS)
	@for spec in $(SPECS); do echo "--- $$spec"; $(CORE)/bin/pipegen graph $$spec; done
	$(CORE)/bin/pipegen compile $(SPECS) -t airflow,kfp -o $(OUT)
	$(CORE)/bin/pipegen compile $(AWS_SPECS) -t stepfunctions -o $(OUT)
	$(CORE)/bin/pipegen run specs/demo.yaml

lint: env-core
	$(CORE)/bin/ruff check .
	$(CORE)/bin/ruff format --check .
	$(CORE)/bin/mypy

test-core: env-core node
	$(CORE)/bin/pytest -n 2 --dist loadgroup tests --ignore=tests/airflow --ignore=tests/kfp

test-airflow: env-airflow
	$(AIRFLOW)/bin/pytest tests/test_import_guard.py $(wildcard tests/airflow)

test-kfp: env-kfp
	$(KFP)/bin/pytest tests/test_import_guard.py $(wildcard tests/kfp)

test: lint test-core test-airflow test-kfp

golden: env-core
	$(CORE)/bin/python -m tests.regen

# Timings only: nothing here is pass/fail. One benchmark at a time, so they do not disturb each other.
bench: env-core env-kfp env-bench
	$(CORE)/bin/python -m benchmarks.run_all

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache
