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

$(STAMP): requirements.txt constraints.txt pyproject.toml tools/check_prereqs.sh
	@python=$$(tools/check_prereqs.sh) && \
	  { [ -x $(PY) ] || $$python -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(PY) -m triplake.jars
	@touch $@

DEMO := .local/demo

DEMO_LAKE := --lake-root $(DEMO)/lake

demo: $(STAMP)  ## run the pipeline on a generated file, the sample and bad rows; print weekly averages and SQL answers
	rm -rf $(DEMO)
	$(BIN)/triplake generate --rows 200000 --seed 7 --duplicate-rate 0.02 --out $(DEMO)/generated.csv
	$(BIN)/triplake run $(DEMO_LAKE) \
	  --input $(DEMO)/generated.csv tests/fixtures/trips_sample.csv tests/fixtures/trips_bad_rows.csv
	@echo; echo "Weekly average number of trips (ISO weeks, weeks without trips count as zero):"
	@for region in Prague Turin Hamburg; do $(BIN)/triplake weekly-average $(DEMO_LAKE) --region $$region || exit 1; done
	@$(BIN)/triplake weekly-average $(DEMO_LAKE) --bbox 14.40,50.03,14.48,50.10 --match both
	@$(BIN)/triplake weekly-average $(DEMO_LAKE) --bbox 14.40,50.03,14.48,50.10 --match any
	@echo; echo "From the two most commonly appearing regions, which is the latest datasource? (per region, then overall)"
	@$(BIN)/triplake sql $(DEMO_LAKE) --file sql/queries/latest_datasource_per_top_region.sql
	@$(BIN)/triplake sql $(DEMO_LAKE) --file sql/queries/latest_datasource_of_top_regions.sql
	@echo; echo "What regions has the cheap_mobile datasource appeared in?"
	@$(BIN)/triplake sql $(DEMO_LAKE) --file sql/queries/regions_of_datasource.sql --param datasource=cheap_mobile

test: $(STAMP)  ## run the whole test suite
	$(PY) -m pytest

bench: $(STAMP)  ## ingest 1M and 10M generated trips into fresh lakes, then time weekly-average queries on them
	$(PY) -m bench.bench_ingest --rows 1000000 10000000
	$(PY) -m bench.bench_queries .local/bench/lake_1000000 .local/bench/lake_10000000

clean:  ## remove the generated lake and benchmark data (keeps .venv and the jar cache)
	rm -rf .local
