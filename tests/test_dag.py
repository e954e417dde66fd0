"""The DAGs trips_receive and trips_ingest, in-process with dag.test() against the moto server, with every Spark
runner.

A file is received by a run of trips_receive (started by hand with `source_uris`), then ingested by a run of
trips_ingest, which takes the lake's inbox. The local runner really runs the Spark job (a spark-submit subprocess
against the s3:// lake in moto); the status events are read from an SQS subscription of the status topic, the way a
user's queue would get them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, lake_rows
from triplake.aws import clients
from triplake.events import FAILED, RECEIVED, SUCCEEDED
from triplake.local.airflow_env import DAGS_FOLDER, airflow_env
from triplake.local.bootstrap import bootstrap
from triplake.orchestration import jobs_requirements
from triplake.settings import Settings, get_settings

RECEIVE_DAG, INGEST_DAG = "trips_receive", "trips_ingest"


class DagStack:
    def __init__(self, settings: Settings, resources, monkeypatch) -> None:
        self.settings, self.resources, self.monkeypatch = settings, resources, monkeypatch
        self.s3, self.sqs, self.sns, self.glue, self.emr = clients(settings, "s3", "sqs", "sns", "glue", "emr-serverless")
        self.status_queue = self.sqs.create_queue(QueueName="dag-test-statuses")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.status_queue, AttributeNames=["QueueArn"])
        self.sns.subscribe(TopicArn=resources.status_topic_arn, Protocol="sqs",
                           Endpoint=queue_arn["Attributes"]["QueueArn"], Attributes={"RawMessageDelivery": "true"})

    def put(self, name: str, body: bytes) -> str:
        key = f"{self.settings.landing_prefix}{name}"
        self.s3.put_object(Bucket=self.settings.landing_bucket, Key=key, Body=body)
        return f"s3://{self.settings.landing_bucket}/{key}"

    @staticmethod
    def dag_test(dag_id: str, **test_options):
        from airflow.utils.cli import get_bagged_dag

        get_settings.cache_clear()  # the DAG file reads the settings of the current environment when parsed
        return get_bagged_dag(None, dag_id).test(**test_options)

    def run(self, conf: dict, **test_options):
        """The files of conf received (trips_receive), then the inbox ingested (trips_ingest): the ingest run."""
        received = self.dag_test(RECEIVE_DAG, run_conf=conf)
        assert received.state == "success"
        return self.dag_test(INGEST_DAG, **test_options)

    def statuses(self) -> list[dict]:
        events = []
        while messages := self.sqs.receive_message(QueueUrl=self.status_queue, MaxNumberOfMessages=10,
                                                   WaitTimeSeconds=1).get("Messages"):
            events += [json.loads(message["Body"]) for message in messages]
            self.sqs.delete_message_batch(QueueUrl=self.status_queue, Entries=[
                {"Id": message["MessageId"], "ReceiptHandle": message["ReceiptHandle"]} for message in messages])
        return events

    def map_labels(self, run_id: str) -> dict[str, str]:
        """The label the Airflow UI shows for each mapped task instance of a run."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            instances = session.query(TaskInstance).filter(TaskInstance.dag_id == INGEST_DAG, TaskInstance.run_id == run_id,
                                                           TaskInstance.map_index >= 0)
            return {f"{ti.task_id}[{ti.map_index}]": ti.rendered_map_index for ti in instances}

    def asset_events(self, run_id: str) -> set[str]:
        from airflow.models.asset import AssetEvent
        from airflow.utils.session import create_session

        with create_session() as session:
            events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run_id)
            return {event.asset.name for event in events}

    def lake_keys(self, prefix: str) -> list[str]:
        bucket, _, root = self.settings.lake_root.removeprefix("s3://").partition("/")
        listing = self.s3.list_objects_v2(Bucket=bucket, Prefix=f"{root}/{prefix}")
        return [item["Key"] for item in listing.get("Contents", [])]


@pytest.fixture(scope="module")
def dag_stack(moto_endpoint, test_settings, tmp_path_factory):
    """Airflow (its own SQLite under a temporary AIRFLOW_HOME) and the resources of the stack, in moto."""
    settings = test_settings.model_copy(update={
        "landing_bucket": "dag-test-landing", "landing_queue_name": "dag-test-landing",
        "status_topic_name": "dag-test-status", "lake_root": "s3://dag-test-lake/lake", "glue_database": "dag_test",
        "spark_driver_memory": "1g",
    })
    resources = bootstrap(settings)
    settings = settings.model_copy(update={"landing_queue_url": resources.landing_queue_url,
                                           "status_topic_arn": resources.status_topic_arn})
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in airflow_env(settings, tmp_path_factory.mktemp("airflow_home")).items():
            monkeypatch.setenv(name, value)
        from airflow.utils import db

        db.resetdb()
        yield DagStack(settings, resources, monkeypatch)
    get_settings.cache_clear()


def test_the_dag_parses_without_calling_aws(dag_stack, monkeypatch):
    import botocore.client
    from airflow.dag_processing.dagbag import DagBag

    def no_aws(*args, **kwargs):
        raise AssertionError("the DAG file called AWS while being parsed")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", no_aws)
    get_settings.cache_clear()
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    for path in DAGS_FOLDER.glob("*.py"):
        assert Path(path).stem in bag.dag_ids, "every DAG file holds the DAG of its own name"
    receive, ingest = bag.get_dag(RECEIVE_DAG), bag.get_dag(INGEST_DAG)
    assert {task.task_id for task in receive.tasks} == {"receive_uploads"}
    assert {task.task_id for task in ingest.tasks} == {"plan_batches", "batch.spark_ingestion", "batch.announce_outcomes"}
    assert ingest.max_active_runs == 1, "one run takes the inbox at a time"
    maintain = bag.get_dag("trips_maintain")
    assert {task.task_id for task in maintain.tasks} == {"maintain_tables"} and maintain.max_active_runs == 1
    assert ingest.get_task("batch.spark_ingestion").max_active_tis_per_dagrun == 1, "one batch at a time"
    (received,) = receive.get_task("receive_uploads").outlets
    assert received.name == "triplake_received_uploads" and received.uri == f"{dag_stack.settings.lake_root}/_inbox"
    assert [asset.name for asset in ingest.timetable.asset_condition.objects] == [received.name], \
        "trips_ingest runs when trips_receive has received uploads"
    assert receive.description and ingest.description and "SNS" in ingest.description
    outlets = ingest.get_task("batch.announce_outcomes").outlets
    assert {asset.name: asset.uri for asset in outlets} == {
        "triplake_trips": f"{dag_stack.settings.lake_root}/curated/trips",
        "triplake_weekly_trips": f"{dag_stack.settings.lake_root}/marts/weekly_trips",
        "triplake_routes": f"{dag_stack.settings.lake_root}/curated/route_models"}


def test_the_dag_says_what_is_missing_when_the_queue_is_not_configured(dag_stack, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.delenv("TRIPLAKE_LANDING_QUEUE_URL")
    get_settings.cache_clear()
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    (error,) = bag.import_errors.values()  # trips_receive's: it watches the queue; trips_ingest needs none
    assert "TRIPLAKE_LANDING_QUEUE_URL is not set" in error


def test_an_uploaded_sample_goes_through_and_succeeds_with_reconciled_counts(dag_stack):
    source = dag_stack.put("sample.csv", SAMPLE.read_bytes())
    run = dag_stack.run({"source_uris": [source]})
    assert run.state == "success"

    received, succeeded = dag_stack.statuses()
    assert (received["status"], succeeded["status"]) == (RECEIVED, SUCCEEDED)
    assert received["ingestion_id"] == succeeded["ingestion_id"]
    assert succeeded["source_uri"] == source and succeeded["dag_run_id"] == run.run_id
    counts = succeeded["counts"]
    assert counts["rows_read"] == 100 and counts["rows_written"] == 100
    assert counts["rows_read"] == counts["rows_valid"] + counts["rows_rejected"]
    assert counts["rows_valid"] == counts["duplicates_in_batch"] + counts["already_present"] + counts["rows_written"]
    # The first file of a region fits its first model, and the event says so.
    assert succeeded["routes"] == {region: {"model_version": 1, "fitted": "new region"}
                                   for region in ("Hamburg", "Prague", "Turin")}
    assert received["routes"] == {}

    # Nothing is registered in Glue: every table is a Delta table, whose partitions Athena reads from its log.
    for table in dag_stack.glue.get_tables(DatabaseName=dag_stack.settings.glue_database)["TableList"]:
        assert table["Parameters"]["table_type"] == "DELTA", table["Name"]
        assert dag_stack.glue.get_partitions(DatabaseName=dag_stack.settings.glue_database,
                                             TableName=table["Name"])["Partitions"] == []

    # The Airflow UI names the files of each batch, and the run published the lake's tables as assets.
    assert set(dag_stack.map_labels(run.run_id).values()) == {"sample.csv"}
    assert dag_stack.lake_keys("_inbox/") == [], "answered: out of the inbox"
    assert dag_stack.asset_events(run.run_id) == {"triplake_trips", "triplake_weekly_trips", "triplake_routes"}


def test_a_file_with_a_bad_header_fails_as_invalid_file_and_writes_no_trips(dag_stack):
    trips_before = dag_stack.lake_keys("curated/trips/")
    source = dag_stack.put("bad header.csv", b"vehicle,from,to\n1,2,3\n")
    run = dag_stack.run({"source_uris": [source]})
    assert run.state == "success", "the batch went through: the file was refused on its own, and answered so"

    received, failed = dag_stack.statuses()
    assert (received["status"], failed["status"]) == (RECEIVED, FAILED)
    assert failed["error"]["kind"] == "invalid_file" and failed["error"]["task"] == "spark_ingestion"
    assert "header" in failed["error"]["message"]
    assert dag_stack.lake_keys("curated/trips/") == trips_before
    raw = [key for key in dag_stack.lake_keys("raw/") if failed["ingestion_id"] in key]
    assert raw and raw[0].endswith("bad header.csv"), "the file the user sent is kept, even when it is refused"


def test_the_emr_serverless_runner_starts_one_job_run_per_batch_with_its_entry_point_arguments_and_zip(
        dag_stack, monkeypatch):
    application = dag_stack.emr.create_application(name="triplake", releaseLabel="emr-7.12.0", type="SPARK")
    package = "s3://dag-test-lake/packages/triplake-0.1.0"
    for name, value in {"TRIPLAKE_SPARK_RUNNER": "emr-serverless", "TRIPLAKE_EMR_APPLICATION_ID": application["applicationId"],
                        "TRIPLAKE_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/triplake-emr-job",
                        "TRIPLAKE_EMR_PACKAGE_URI": package, "TRIPLAKE_EMR_POLL_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    sources = [dag_stack.put(name, SAMPLE.read_bytes()) for name in ("for emr.csv", "for emr too.csv")]
    run = dag_stack.run({"source_uris": sources})

    events = dag_stack.statuses()
    received = {event["ingestion_id"]: event["source_uri"] for event in events if event["status"] == RECEIVED}
    (job_run,) = dag_stack.emr.list_job_runs(applicationId=application["applicationId"])["jobRuns"]
    detail = dag_stack.emr.get_job_run(applicationId=application["applicationId"], jobRunId=job_run["id"])["jobRun"]
    assert detail["executionRole"] == "arn:aws:iam::123456789012:role/triplake-emr-job"
    driver = detail["jobDriver"]["sparkSubmit"]
    batch_id = driver["entryPointArguments"][1]
    assert driver["entryPointArguments"] == ["--batch-id", batch_id, "--lake-root", dag_stack.settings.lake_root]
    assert driver["entryPoint"] == f"{package}/ingestion.py"
    assert f"--py-files {package}/spark_jobs.zip" in driver["sparkSubmitParameters"]
    assert "-XX:-DontCompileHugeMethods" in driver["sparkSubmitParameters"]
    assert "spark.executorEnv.PYSPARK_PYTHON=/usr/bin/python3.11" in driver["sparkSubmitParameters"], "the image's"
    manifest = f"lake/_batches/{batch_id}.json"
    body = json.loads(dag_stack.s3.get_object(Bucket="dag-test-lake", Key=manifest)["Body"].read())
    assert [(received[item["ingestion_id"]], item["source_uri"]) for item in body["ingestions"]] == [
        (source, source) for source in sources], "one job run for the batch of both files, in the conf's order"
    # moto's job runs succeed without running Spark: no file has an outcome, and each is answered so.
    finished = [event for event in events if event["status"] != RECEIVED]
    assert [event["status"] for event in finished] == [FAILED, FAILED] and run.state == "success"
    assert all("without a word about this file" in event["error"]["message"] for event in finished)
    assert dag_stack.lake_keys("_inbox/") == [] and dag_stack.lake_keys("_lease.json") == []


def test_the_glue_runner_starts_one_run_of_the_ingestion_job_with_the_same_command_line(dag_stack, monkeypatch):
    package = "s3://dag-test-lake/packages/triplake-0.1.0"
    dag_stack.glue.create_job(Name="triplake-ingestion", Role="arn:aws:iam::123456789012:role/triplake-glue-job",
                              GlueVersion="5.0", Command={"Name": "glueetl", "ScriptLocation": f"{package}/ingestion.py",
                                                          "PythonVersion": "3"})
    for name, value in {"TRIPLAKE_SPARK_RUNNER": "glue", "TRIPLAKE_EMR_PACKAGE_URI": package,
                        "TRIPLAKE_EMR_POLL_SECONDS": "1"}.items():
        monkeypatch.setenv(name, value)
    source = dag_stack.put("for glue.csv", SAMPLE.read_bytes())
    run = dag_stack.run({"source_uris": [source]})

    received, failed = dag_stack.statuses()
    (job_run,) = dag_stack.glue.get_job_runs(JobName="triplake-ingestion")["JobRuns"]
    assert job_run["JobRunState"] == "SUCCEEDED" and (received["status"], failed["status"]) == (RECEIVED, FAILED)
    assert job_run["Arguments"] == {
        "--batch-id": f"batch-{received['ingestion_id']}", "--lake-root": dag_stack.settings.lake_root,
        "--extra-py-files": f"{package}/spark_jobs.zip",
        "--additional-python-modules": ",".join(jobs_requirements()),
        "--conf": "spark.driver.extraJavaOptions=-XX:-DontCompileHugeMethods "
                  "--conf spark.executor.extraJavaOptions=-XX:-DontCompileHugeMethods",
    }
    labels = dag_stack.map_labels(run.run_id)  # each task of the batch is named by its file
    assert labels["batch.spark_ingestion[0]"] == labels["batch.announce_outcomes[0]"] == "for glue.csv"


def test_an_upload_that_is_not_a_csv_is_answered_failed_at_once_and_recorded(dag_stack):
    from tests.conftest import lake_rows

    source = dag_stack.put("notes.txt", b"not trips")
    run = dag_stack.dag_test(RECEIVE_DAG, run_conf={"source_uris": [source]})
    assert run.state == "success" and dag_stack.lake_keys("_inbox/") == [], "answered at once, nothing to ingest"

    received, failed = dag_stack.statuses()
    assert (received["status"], failed["status"]) == (RECEIVED, FAILED)
    assert failed["error"]["kind"] == "unsupported_file" and "'notes.txt'" in failed["error"]["message"]
    assert failed["ingestion_id"] == received["ingestion_id"] and failed["dag_run_id"] == run.run_id
    records = lake_rows(dag_stack.settings.lake_root, "select ingestion_id, status, error from ingestion_reconciliation",
                        dag_stack.settings)
    (record,) = [row for row in records if row["ingestion_id"] == failed["ingestion_id"]]
    assert record["status"] == FAILED and json.loads(record["error"])["kind"] == "unsupported_file"


def test_a_truncated_gzip_fails_as_invalid_file_naming_the_truncation_and_is_recorded(dag_stack):
    import gzip

    from tests.conftest import lake_rows

    source = dag_stack.put("cut.csv.gz", gzip.compress(SAMPLE.read_bytes())[:600])
    dag_stack.run({"source_uris": [source]})

    received, failed = dag_stack.statuses()
    assert (received["status"], failed["status"]) == (RECEIVED, FAILED)
    assert failed["error"]["kind"] == "invalid_file" and "truncated" in failed["error"]["message"]
    (record,) = [row for row in lake_rows(dag_stack.settings.lake_root, "select * from ingestion_reconciliation",
                                          dag_stack.settings) if row["ingestion_id"] == failed["ingestion_id"]]
    assert record["status"] == FAILED and record["rows_written"] == 0


def test_trips_forget_erases_the_selection_of_its_conf_and_records_which_run_asked(dag_stack):
    run = dag_stack.run({"source_uris": [dag_stack.put("sample to forget.csv", SAMPLE.read_bytes())]})
    assert run.state == "success"
    dag_stack.statuses()
    lake, settings = dag_stack.settings.lake_root, dag_stack.settings
    counted = "select count(*) as n from trips where datasource = 'cheap_mobile'"
    before = lake_rows(lake, counted, settings)
    assert before[0]["n"] > 0

    assert dag_stack.dag_test("trips_forget", run_conf={"datasource": "cheap_mobile", "dry_run": True}).state == "success"
    assert lake_rows(lake, counted, settings) == before, "a dry run changes nothing"
    refused = dag_stack.dag_test("trips_forget", run_conf={"datasource": "cheap_mobile", "colour": "red"})
    assert refused.state == "failed"
    assert lake_rows(lake, counted, settings) == before

    erased = dag_stack.dag_test("trips_forget", run_conf={"datasource": "cheap_mobile"})
    assert erased.state == "success"
    assert lake_rows(lake, counted, settings) == [{"n": 0}]
    (record,) = lake_rows(lake, "select selection, trips, erased_by from erasures", settings)
    assert json.loads(record["selection"])["datasource"] == "cheap_mobile" and record["trips"] == before[0]["n"]
    assert record["erased_by"].endswith(f"(trips_forget run {erased.run_id})")
    assert dag_stack.asset_events(erased.run_id) == {"triplake_trips", "triplake_weekly_trips", "triplake_routes"}
