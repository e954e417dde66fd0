# triplake — the two commands a user needs are `make demo` and `make test`; both set up on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-done
PY      := $(BIN)/python
# checkov lives in a venv of its own: its pins conflict with Airflow's.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.setup-done
# LocalStack too (Python 3.11 needs 4.13.x; its pins conflict with Airflow's).
LOCALSTACK_VENV  := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.setup-done
# And the AWS CLI the stack tests upload with, as users do (its pins conflict with Airflow's).
AWSCLI_VENV  := .venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.setup-done

.PHONY: help setup demo batch-demo test test-localstack localstack check-infra bench bench-scale bench-events bench-burst bench-requests bench-uploads screenshot package infra-tables constraints clean

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

$(CHECKOV_STAMP): tools/checkov-requirements.txt tools/check_prereqs.sh
	@python=$$(tools/check_prereqs.sh) && \
	  { [ -x $(CHECKOV_VENV)/bin/python ] || $$python -m venv $(CHECKOV_VENV); }
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.txt
	@touch $@

$(AWSCLI_STAMP): tools/awscli-requirements.txt tools/check_prereqs.sh
	@python=$$(tools/check_prereqs.sh) && \
	  { [ -x $(AWSCLI_VENV)/bin/python ] || $$python -m venv $(AWSCLI_VENV); }
	$(AWSCLI_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/awscli-requirements.txt
	@touch $@

test: $(STAMP) $(CHECKOV_STAMP) $(AWSCLI_STAMP)  ## run the whole test suite (the offline infra checks included)
	$(PY) -m pytest

localstack: $(LOCALSTACK_STAMP)  ## install LocalStack (pinned, in .venv-localstack) for `triplake stack up --aws localstack`

$(LOCALSTACK_STAMP): tools/localstack-requirements.txt tools/check_prereqs.sh
	@python=$$(tools/check_prereqs.sh) && \
	  { [ -x $(LOCALSTACK_VENV)/bin/python ] || $$python -m venv $(LOCALSTACK_VENV); }
	$(LOCALSTACK_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/localstack-requirements.txt
	@touch $@

test-localstack: $(STAMP) $(LOCALSTACK_STAMP) $(AWSCLI_STAMP)  ## the event path (upload -> DAG -> signed status events) on LocalStack for S3, SQS, SNS, STS
	$(PY) -m pytest --aws localstack -m "event_path or localstack"

check-infra: $(STAMP) $(CHECKOV_STAMP)  ## the offline checks of infra/ and docker-compose.yml alone, with checkov's full report
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --directory infra --framework terraform --skip-download --compact --quiet
	$(PY) -m pytest tests/test_infra.py tests/test_compose.py

bench: $(STAMP)  ## ingest 1M and 10M generated trips into fresh lakes, time weekly-average queries on them, then a 2M file beside a DuckDB reference
	$(PY) -m bench.bench_ingest --rows 1000000 10000000
	$(PY) -m bench.bench_queries .local/bench/lake_1000000 .local/bench/lake_10000000
	$(PY) -m bench.bench_reference --rows 2000000

SCALE_ROWS ?= 1000000 10000000 30000000 100000000
bench-scale: $(STAMP)  ## the whole pipeline at 1M..100M trips (files of <= 10M), queries, one more 1M file; ~30 GB in .local/bench
	$(PY) -m bench.bench_scale --rows $(SCALE_ROWS) > /dev/null
	$(PY) -m bench.scale_report .local/bench/scale.json --plot .local/bench/scale_plot.png

bench-requests: $(STAMP)  ## S3 requests of `triplake run` into an s3:// lake on moto (the sample, 20,000 trips), by method
	$(PY) -m bench.bench_requests --rows 20000

bench-uploads: $(STAMP)  ## 40,000 trips as one file and as 40 uploads of 1,000: files per table, queries, then maintain
	$(PY) -m bench.bench_uploads --rows 40000 --uploads 40

bench-burst: $(STAMP) $(AWSCLI_STAMP)  ## a folder of 100 files of 500 trips copied at once onto a fresh local stack: time to every answer, order
	$(PY) -m bench.bench_burst --files 100 --rows 500

bench-events: $(STAMP)  ## upload -> RECEIVED and upload -> SUCCEEDED latency of the sample on fresh local stacks
	$(PY) -m bench.bench_events --rounds 3

screenshot: $(STAMP)  ## the Airflow UI after three uploads, checked in headless Chromium (apt install chromium): docs/img/airflow_run.png
	$(PY) -m pip install --quiet --disable-pip-version-check -r tools/screenshot-requirements.txt -c constraints.txt
	$(PY) tools/airflow_ui_screenshot.py

package: $(STAMP)  ## build .local/package: spark_jobs.zip and the job entry points that EMR Serverless runs
	$(PY) -m triplake.package --out .local/package

infra-tables: $(STAMP)  ## write infra/tables.tf.json (Terraform's Glue tables) from sql/ddl
	$(PY) -m triplake.aws.glue > infra/tables.tf.json

constraints: $(STAMP)  ## re-resolve requirements.txt and pin every package of the resolve in constraints.txt
	$(PY) -m pip install --dry-run --ignore-installed --quiet --disable-pip-version-check \
	  --report .local/resolve.json -r requirements.txt
	$(PY) tools/write_constraints.py .local/resolve.json > constraints.txt

clean:  ## remove the generated lake and benchmark data (keeps .venv and the jar cache)
	rm -rf .local
