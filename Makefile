# triplake — the two commands a user needs are `make demo` and `make test`; both set up on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-done
PY      := $(BIN)/python

.PHONY: help setup demo test bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv, install the pinned requirements and the S3A jars

$(STAMP): requirements.txt pyproject.toml tools/check_prereqs.sh
	@python=$$(tools/check_prereqs.sh) && \
	  { [ -x $(PY) ] || $$python -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(PY) -m triplake.jars
	@touch $@

DEMO := .local/demo

demo: $(STAMP)  ## run the pipeline (ingest, routes) on a generated file, the sample and a file of bad rows
	rm -rf $(DEMO)
	$(BIN)/triplake generate --rows 200000 --seed 7 --duplicate-rate 0.02 --out $(DEMO)/generated.csv
	$(BIN)/triplake run --lake-root $(DEMO)/lake \
	  --input $(DEMO)/generated.csv tests/fixtures/trips_sample.csv tests/fixtures/trips_bad_rows.csv

test: $(STAMP)  ## run the whole test suite
	$(PY) -m pytest

bench: $(STAMP)  ## ingest 1M and 10M generated trips into fresh lakes, then time weekly-average queries on them
	$(PY) -m bench.bench_ingest --rows 1000000 10000000
	$(PY) -m bench.bench_queries .local/bench/lake_1000000 .local/bench/lake_10000000

clean:  ## remove the generated lake and benchmark data (keeps .venv and the jar cache)
	rm -rf .local
