# triplake — the two commands a user needs are `make demo` and `make test`; both set up on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-done
PY      := $(BIN)/python

.PHONY: help setup demo batch-demo test bench bench-events package clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv, install the pinned requirements and the S3A jars

$(STAMP): requirements.txt constraints.txt pyproject.toml tools/check_prereqs.sh
	@python=$$(tools/check_prereqs.sh) && \
	  { [ -x $(PY) ] || $$python -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(PY) -m triplake.jars
	@touch $@

demo: $(STAMP)  ## the event-driven path locally: stack up, upload files, status events as they arrive, answers, stack down
	tools/demo.sh

batch-demo: $(STAMP)  ## the batch pipeline without Airflow: a generated file, the sample and bad rows into a file:// lake
	rm -rf .local/batch-demo
	$(BIN)/triplake generate --rows 200000 --seed 7 --duplicate-rate 0.02 --out .local/batch-demo/generated.csv
	$(BIN)/triplake run --lake-root .local/batch-demo/lake \
	  --input .local/batch-demo/generated.csv tests/fixtures/trips_sample.csv tests/fixtures/trips_bad_rows.csv
	@for region in Prague Turin Hamburg; do $(BIN)/triplake weekly-average --lake-root .local/batch-demo/lake --region $$region || exit 1; done

test: $(STAMP)  ## run the whole test suite
	$(PY) -m pytest

bench: $(STAMP)  ## ingest 1M and 10M generated trips into fresh lakes, then time weekly-average queries on them
	$(PY) -m bench.bench_ingest --rows 1000000 10000000
	$(PY) -m bench.bench_queries .local/bench/lake_1000000 .local/bench/lake_10000000

bench-events: $(STAMP)  ## upload -> RECEIVED and upload -> SUCCEEDED latency of the sample on fresh local stacks
	$(PY) -m bench.bench_events --rounds 3

package: $(STAMP)  ## build .local/package: spark_jobs.zip and the job entry points that EMR Serverless runs
	$(PY) -m triplake.package --out .local/package

clean:  ## remove the generated lake and benchmark data (keeps .venv and the jar cache)
	rm -rf .local
