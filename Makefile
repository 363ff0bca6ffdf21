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
# Prefect pins fastapi below the core environment's: its own environment, without the default groups.
PREFECT := .venv-prefect
BENCH := .venv-bench
# What workers install (the project's [runtime,aws,sql] extras, built as a wheel) plus the test runner; the
# -oldest one has the oldest mlflow-skinny the runtime extra admits. Their servers come from $(CORE).
RUNTIME := .venv-runtime
RUNTIME_OLDEST := .venv-runtime-oldest
RUNTIME_SYNC := sync --frozen --quiet --no-default-groups --extra runtime --extra aws --extra sql --group runtime-test \
	--no-editable --reinstall-package pipegen-ml
# The runtime tests that need no full mlflow run in $(RUNTIME) instead of $(CORE): what workers install is
# what they prove (tests/runtime/test_local_run.py stays in $(CORE): `pipegen run` uses sqlite, full mlflow).
# (test_aws_jobs.py stays in $(CORE): it holds moto's Batch jobs RUNNING through a hook in moto's own process.)
RUNTIME_SUITE := $(addprefix tests/runtime/,test_mlflow_runtime.py test_gates.py test_notify.py test_run_date.py \
	test_promotion_rules.py test_tracking_bounds.py test_step_retry.py)
SPECS := $(sort $(wildcard specs/*.yaml))
# The example specs each target compiles: all of them but those it refuses with a located PG602 (the same
# pairs as tests/cases.py's UNSUPPORTED): Step Functions has no local backend (demo); Spark on the Spark Operator
# and Ray on KubeRay (spark-ray-k8s) run on all but Prefect and Step Functions.
specs_but = $(filter-out $(patsubst %,specs/%.yaml,$(1)),$(SPECS))
AIRFLOW_SPECS := $(SPECS)
KFP_SPECS := $(SPECS)
ARGO_SPECS := $(SPECS)
STEPFUNCTIONS_SPECS := $(call specs_but,demo spark-ray-k8s)
PREFECT_SPECS := $(call specs_but,spark-ray-k8s)
OUT := build

.PHONY: help uv java env-core env-airflow env-kfp env-prefect env-bench env-runtime env-runtime-oldest envs node demo test lint \
	test-core test-airflow test-kfp test-prefect test-runtime test-differential golden bench clean

help:
	@echo "make demo    set up, then validate, draw and compile the example specs (and run the demo)"
	@echo "make test    set up every environment, then lint, type-check and run all tests"
	@echo "make golden  regenerate golden files (review the diff before committing)"
	@echo "make bench   run the benchmarks and rewrite BENCHMARKS.md's figures"

uv:
	@$(UV) --version 2>/dev/null | grep -qF "$(UV_VERSION)" || $(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Spark steps run with pyspark's spark-submit, which needs Java 17 or newer (Spark 4). Debian 12 packages 17 only:
# installed when `java` is missing or older (apt-get as root, else through sudo). ~16 s on a fresh machine.
JAVA_PACKAGE := openjdk-17-jre-headless

java:
	@major=$$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1); \
	if [ -z "$$major" ] || [ "$$major" -lt 17 ]; then \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		echo "installing $(JAVA_PACKAGE) (Spark needs Java 17+; found: $${major:-none})"; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(JAVA_PACKAGE); \
	fi

env-core: uv
	@UV_PROJECT_ENVIRONMENT=$(CORE) $(UV) sync --frozen --quiet --extra postgres --extra mysql

env-airflow: uv
	@UV_PROJECT_ENVIRONMENT=$(AIRFLOW) $(UV) sync --frozen --quiet --group airflow

env-kfp: uv
	@UV_PROJECT_ENVIRONMENT=$(KFP) $(UV) sync --frozen --quiet --group kfp

env-prefect: uv
	@UV_PROJECT_ENVIRONMENT=$(PREFECT) $(UV) sync --frozen --quiet --no-default-groups --group prefect

env-bench: uv
	@UV_PROJECT_ENVIRONMENT=$(BENCH) $(UV) sync --frozen --quiet --group bench

env-runtime: uv
	@UV_PROJECT_ENVIRONMENT=$(RUNTIME) $(UV) $(RUNTIME_SYNC)

env-runtime-oldest: uv
	@UV_PROJECT_ENVIRONMENT=$(RUNTIME_OLDEST) $(UV) $(RUNTIME_SYNC) --group runtime-oldest

envs: env-core env-airflow env-kfp env-prefect env-runtime env-runtime-oldest

node: tools/node/node_modules/.package-lock.json

tools/node/node_modules/.package-lock.json: tools/node/package-lock.json
	cd tools/node && npm ci --no-audit --no-fund --loglevel=error

demo: env-core
	$(CORE)/bin/pipegen validate $(SPECS)
	@for spec in $(SPECS); do echo "--- $$spec"; $(CORE)/bin/pipegen graph $$spec; done
	$(CORE)/bin/pipegen compile $(AIRFLOW_SPECS) -t airflow -o $(OUT)
	$(CORE)/bin/pipegen compile $(KFP_SPECS) -t kfp -o $(OUT)
	$(CORE)/bin/pipegen compile $(ARGO_SPECS) -t argo -o $(OUT)
	$(CORE)/bin/pipegen compile $(STEPFUNCTIONS_SPECS) -t stepfunctions -o $(OUT)
	$(CORE)/bin/pipegen compile $(PREFECT_SPECS) -t prefect -o $(OUT)
	$(CORE)/bin/pipegen run specs/demo.yaml

lint: env-core
	$(CORE)/bin/ruff check .
	$(CORE)/bin/ruff format --check .
	$(CORE)/bin/mypy

# tests/test_docs.py runs docs/deploying.md's Airflow and kfp commands in those environments.
test-core: env-core env-airflow env-kfp node java
	$(CORE)/bin/pytest -n 2 --dist loadgroup tests --ignore=tests/airflow --ignore=tests/kfp --ignore=tests/prefect \
		--ignore=tests/runtime_only --ignore=tests/differential $(addprefix --ignore=,$(RUNTIME_SUITE))

# Two workers, as for the core tests: these tests mostly wait on the engine (dag.test(), kfp.local's task
# processes), so two of them share the two cores well. Each worker has its own AIRFLOW_HOME and metadata DB; the
# tests that share the session's Ray head stay on one worker (xdist_group, tests/support_ray.py).
test-airflow: env-airflow java
	$(AIRFLOW)/bin/pytest -n 2 --dist loadgroup tests/test_import_guard.py $(wildcard tests/airflow)

# Spark steps run with pyspark's spark-submit (Java 17) and Ray jobs on a session head in tests/kfp and tests/prefect.
test-kfp: env-kfp java
	$(KFP)/bin/pytest -n 2 --dist loadgroup tests/test_import_guard.py $(wildcard tests/kfp)

# Flows run in Prefect's engine: one ephemeral API server (test harness) and one MLflow server per session.
test-prefect: env-prefect java
	$(PREFECT)/bin/pytest tests/test_import_guard.py $(wildcard tests/prefect)

# The oldest mlflow-skinny runs the tests that talk to MLflow, less the one that restarts a server (~2 server
# starts) to test the runtime's own handling of an outage.
test-runtime: env-core env-runtime env-runtime-oldest
	PIPEGEN_TEST_TOOLS=$(abspath $(CORE))/bin $(RUNTIME)/bin/pytest -n 2 --dist loadgroup tests/runtime_only \
		tests/test_import_guard.py $(RUNTIME_SUITE)
	PIPEGEN_TEST_TOOLS=$(abspath $(CORE))/bin $(RUNTIME_OLDEST)/bin/pytest tests/runtime_only \
		tests/runtime/test_mlflow_runtime.py --deselect tests/runtime/test_mlflow_runtime.py::test_server_stopped_mid_promotion

# One spec, every engine, the same end state (tests/differential, docs/migrating.md). Not under xdist: the
# harness shares one MLflow server per engine, moto and an Airflow DB across scenarios and runs engines in parallel.
test-differential: env-core env-airflow env-kfp env-prefect node
	$(CORE)/bin/pytest tests/differential

test: lint test-core test-airflow test-kfp test-prefect test-runtime test-differential

golden: env-core
	$(CORE)/bin/python -m tests.regen

# Timings only: nothing here is pass/fail. One benchmark at a time, so they do not disturb each other.
bench: env-core env-airflow env-kfp env-prefect env-bench
	$(CORE)/bin/python -m benchmarks.run_all

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache
