"""Offline checks of infra/ (the AWS provider cannot be downloaded here): every .tf parses, the names Terraform gives
queues, topics, tables and settings are the ones the app uses, checkov finds nothing, and the files are formatted."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from spark_jobs.common import tables as lake_tables
from triplake.aws.glue import table_input, terraform_tables
from triplake.settings import REPO_ROOT, Settings
from triplake.query.catalog import table_definitions

INFRA = REPO_ROOT / "infra"
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
# The EMR release whose Spark is the pyspark the jobs are tested with (AWS's EMR Serverless release notes).
EMR_RELEASE_OF_SPARK = {"3.5.6": "emr-7.12.0"}
INTERPOLATION = re.compile(r"\$\{(var|local)\.([a-z_]+)\}")


def tf_files() -> list[Path]:
    return sorted(path for path in INFRA.rglob("*.tf") if ".terraform" not in path.parts)


@cache
def parsed(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle)


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals ('"triplake"') and labels; expressions stay '${...}'."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def root_variables() -> dict[str, Any]:
    blocks = parsed(INFRA / "variables.tf")["variable"]
    return {unquote(name): unquote(body.get("default")) for block in blocks for name, body in block.items()}


def root_blocks(kind: str) -> list[dict[str, Any]]:
    """The blocks of one kind (resource, data, module, locals) of every .tf file of the root module."""
    return [block for path in sorted(INFRA.glob("*.tf")) for block in parsed(path).get(kind, [])]


@cache
def root_locals() -> dict[str, Any]:
    return {name: value for block in root_blocks("locals") for name, value in block.items()}


def resolve(value: Any) -> Any:
    """The value of a root local or string with the variables at their defaults; references to resources or data
    sources stay as they are (they exist only in AWS)."""
    text = unquote(value)
    if not isinstance(text, str):
        return text

    def substitute(match: re.Match[str]) -> str:
        kind, name = match.groups()
        resolved = resolve(root_variables()[name] if kind == "var" else root_locals()[name])
        return str(resolved)

    previous = None
    while previous != text:
        previous, text = text, INTERPOLATION.sub(substitute, text)
    return text


def test_every_tf_file_parses_and_declares_something():
    files = tf_files()
    assert {path.name for path in files} >= {"main.tf", "variables.tf", "outputs.tf", "versions.tf"}
    for path in files:
        assert parsed(path), f"{path.relative_to(REPO_ROOT)} declares nothing"


def test_terraform_and_provider_versions_are_pinned_in_every_module():
    for path in (p for p in tf_files() if p.name == "versions.tf"):
        terraform = parsed(path)["terraform"][0]
        assert unquote(terraform["required_version"]) == ">= 1.5", path
        aws = terraform["required_providers"][0]["aws"]
        assert (unquote(aws["source"]), unquote(aws["version"])) == ("hashicorp/aws", "~> 6.0"), path


def test_names_are_the_ones_settings_use():
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    assert resolve(root_variables()["landing_prefix"]) == defaults["landing_prefix"]
    assert resolve(root_locals()["landing_queue_name"]) == defaults["landing_queue_name"]
    # bootstrap (the local stack) names the dead-letter queue the same way
    assert resolve(root_locals()["dead_letter_queue_name"]) == f"{defaults['landing_queue_name']}-dlq"
    assert resolve(root_locals()["status_topic_name"]) == defaults["status_topic_name"]
    assert resolve(root_locals()["glue_database"]) == defaults["glue_database"]
    assert resolve(root_locals()["athena_workgroup"]) == defaults["athena_workgroup"]
    assert resolve(root_locals()["glue_job_name"]) == defaults["glue_job_name"]



def test_the_landing_notification_covers_every_object_under_the_prefix():
    """What is ingested is decided in one place (triplake.events.is_ingestible), not by a suffix filter that would
    be case-sensitive and silently drop every other upload: the DAG answers those FAILED."""
    (notification,) = [body['"landing"'] for block in root_blocks("resource") for kind, body in block.items()
                       if unquote(kind) == "aws_s3_bucket_notification"]
    (queue,) = notification["queue"]
    assert resolve(queue["filter_prefix"]) == resolve(root_variables()["landing_prefix"])
    assert "filter_suffix" not in queue and unquote(queue["events"][0]) == "s3:ObjectCreated:*"


def test_the_settings_output_sets_real_settings_with_valid_values():
    settings = {name: resolve(value) for name, value in root_locals()["triplake_settings"].items()}
    fields = {f"TRIPLAKE_{name.upper()}": name for name in Settings.model_fields}
    unknown = sorted(set(settings) - set(fields))
    assert not unknown, f"triplake_settings names settings that do not exist: {unknown}"
    needed_on_aws = {
        "lake_root", "landing_bucket", "landing_prefix", "landing_queue_url", "status_topic_arn", "spark_runner",
        "emr_application_id", "emr_execution_role_arn", "emr_package_uri", "glue_database", "athena_workgroup",
        "aws_region",
    }
    assert needed_on_aws <= {fields[name] for name in settings}

    known = {fields[name]: value for name, value in settings.items() if "${" not in str(value)}
    validated = Settings.model_validate(known)  # literal values must be values Settings accepts
    assert validated.spark_runner == "emr-serverless"
    assert validated.landing_prefix == "incoming/"


def test_the_lake_root_is_the_lake_bucket_and_prefix_and_the_package_lies_beside_it():
    lake_root = resolve(root_locals()["lake_root"])
    assert lake_root == "s3://${local.lake_bucket}/lake".replace("${local.lake_bucket}", resolve(root_locals()["lake_bucket"]))
    assert lake_root.startswith("s3://triplake-lake-")
    package = resolve(root_locals()["triplake_settings"]["TRIPLAKE_EMR_PACKAGE_URI"])
    assert not package.startswith(lake_root), "the package must not live inside the lake the jobs overwrite"


def test_glue_tables_are_generated_from_sql_ddl_and_the_committed_file_has_not_drifted():
    committed = json.loads((INFRA / "tables.tf.json").read_text())
    assert committed == terraform_tables(), "sql/ddl changed: run `make infra-tables` and commit infra/tables.tf.json"
    declared = committed["locals"]["tables"]
    assert set(declared) == {table.name for table in table_definitions()}
    for table in table_definitions():
        expected = table_input(table, "")
        assert [(c["name"], c["type"]) for c in declared[table.name]["columns"]] == [
            (c["Name"], c["Type"]) for c in expected["StorageDescriptor"]["Columns"]]
        assert declared[table.name]["location"] == table.location
    glue_tables = [body for block in root_blocks("resource") for kind, body in block.items()
                   if unquote(kind) == "aws_glue_catalog_table"]
    assert [table['"this"']["for_each"] for table in glue_tables] == ["${local.tables}"]


def test_lifecycle_prefixes_are_the_lake_layout():
    modules = {unquote(name): body for block in root_blocks("module") for name, body in block.items()}
    rules = {unquote(rule["id"]): resolve(rule["prefix"]) for rule in modules["lake_bucket"]["lifecycle_rules"]}
    assert rules["archive-raw-copies"] == f"lake/{lake_tables.RAW}/"
    expiring = [unquote(rule["id"]) for rule in modules["lake_bucket"]["lifecycle_rules"] if "expiration_days" in rule]
    assert expiring == ["expire-athena-results"], "nothing of the lake expires: recovery reads an interrupted " \
                                                  "ingestion's intent under _staging/, however old"
    assert rules["expire-athena-results"] == "lake/_athena_results/"  # where bootstrap puts them locally


def test_uploads_expire_from_the_landing_bucket_only_after_the_dead_letter_queue_lets_go_of_their_messages():
    """What an erasure took from the lake (its raw copies) must not stay for ever in the landing bucket, and an upload
    a redrive sends back must still be there."""
    modules = {unquote(name): body for block in root_blocks("module") for name, body in block.items()}
    (rule,) = modules["landing_bucket"]["lifecycle_rules"]
    assert resolve(rule["prefix"]) == resolve(root_variables()["landing_prefix"])
    dead_letter = next(body['"landing_dead_letter"'] for block in root_blocks("resource") for kind, body in block.items()
                       if unquote(kind) == "aws_sqs_queue" and '"landing_dead_letter"' in body)
    days = int(resolve(rule["expiration_days"]))
    assert dead_letter["message_retention_seconds"] / 86400 < days <= 31


def test_emr_release_runs_the_spark_the_jobs_are_tested_with():
    import pyspark

    assert resolve(root_variables()["emr_release_label"]) == EMR_RELEASE_OF_SPARK[pyspark.__version__]


def test_checkov_finds_no_failed_check_and_every_skip_says_why():
    assert CHECKOV.exists(), "checkov is missing: `make test` installs it into .venv-checkov"
    result = subprocess.run(
        [str(CHECKOV), "--directory", str(INFRA), "--framework", "terraform", "--skip-download", "--output", "json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    checks = report.get("results", {})
    failed = [f"{check['check_id']} {check['resource']} ({check['file_path']})" for check in checks.get("failed_checks", [])]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert len(checks.get("passed_checks", [])) > 100, "checkov ran no real scan"
    unexplained = [check["check_id"] for check in checks.get("skipped_checks", [])
                   if len((check.get("check_result") or {}).get("suppress_comment", "")) < 20]
    assert not unexplained, f"skips without an inline reason: {unexplained}"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH (the check runs where one is)")
def test_terraform_files_are_formatted():
    result = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-diff", str(INFRA)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"run `terraform fmt -recursive infra`:\n{result.stdout}"


def policy_statements(document: str) -> list[dict[str, Any]]:
    policies = {unquote(name): body for block in root_blocks("data")
                for kind, documents in block.items() if unquote(kind) == "aws_iam_policy_document"
                for name, body in documents.items()}
    return policies[document]["statement"]


def resources_of(kind: str) -> dict[str, Any]:
    return {unquote(name): body for block in root_blocks("resource")
            for found, resources in block.items() if unquote(found) == kind for name, body in resources.items()}


def test_the_job_role_and_the_airflow_policy_name_every_resource_and_no_wildcard_action():
    for document in ("emr_job", "glue_job", "airflow"):
        for statement in policy_statements(document):
            actions = [unquote(action) for action in statement["actions"]]
            assert all("*" not in action for action in actions), (document, actions)
            resources = statement["resources"]
            assert resources != ["*"] and '"*"' not in str(resources), (document, statement.get("sid"))


def test_the_spark_jobs_touch_only_s3_and_the_key():
    services = {unquote(action).split(":")[0] for statement in policy_statements("emr_job")
                for action in statement["actions"]}
    assert services == {"s3", "kms"}
    object_resources = [resolve(resource) for statement in policy_statements("emr_job")
                        for resource in statement["resources"] if "/" in str(resource)]
    assert object_resources and all(resource.endswith("*") for resource in object_resources)
    assert {resource.split("}/", 1)[1] for resource in object_resources} == {"incoming/*", "package/*", "lake/*"}


def test_the_airflow_policy_lets_the_dags_receive_uploads_hold_the_lease_and_record_uploads_that_never_reached_spark():
    from spark_jobs.common.ingestions import BATCHES
    from spark_jobs.common.lease import LEASE_FILE
    from triplake.inbox import INBOX, RECEIPTS

    statements = {unquote(statement["sid"]): statement for statement in policy_statements("airflow")}
    control = statements["ReceiveUploadsAndHoldTheLakeLease"]
    assert sorted(resolve(resource).split("/lake/", 1)[1] for resource in control["resources"]) == sorted(
        [LEASE_FILE, f"{RECEIPTS}/*", f"{INBOX}/*", f"{BATCHES}/*"]), "the control objects, nothing of the tables"
    assert {unquote(action) for action in control["actions"]} == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    (records,) = [resolve(resource) for resource in statements["RecordFailedUploads"]["resources"]]
    assert records.endswith(f"/lake/{lake_tables.INGESTIONS}/*")


def test_the_airflow_policy_lets_trips_forget_delete_old_versions_only_where_erased_data_lived():
    from triplake.forget import ERASED_PLACES, PLANS

    statements = {unquote(statement["sid"]): statement for statement in policy_statements("airflow")}
    deleting = [name for name, statement in statements.items()
                if "s3:DeleteObjectVersion" in {unquote(action) for action in statement["actions"]}]
    assert deleting == ["DeleteTheOldVersionsOfErasedData"]
    places = [resolve(resource).split("/lake/", 1)[1] for resource in statements[deleting[0]]["resources"]]
    listing = statements["ListTheOldVersionsOfErasedData"]
    assert [unquote(action) for action in listing["actions"]] == ["s3:ListBucketVersions"]
    ((condition,),) = [listing["condition"]]
    assert unquote(condition["variable"]) == "s3:prefix" and unquote(condition["test"]) == "StringLike"
    assert [resolve(value).removeprefix("lake/") for value in condition["values"]] == places
    # Every place forget deletes files and then their old versions under, and nothing else.
    assert all(any(f"{location}/".startswith(place.removesuffix("*")) for place in places) for location in ERASED_PLACES), places
    assert sorted(places) == sorted(["curated/*", "marts/*", "models/*", f"{lake_tables.RAW}/*", f"{PLANS}/*"])
    rewriting = statements["EraseFromTheRawCopiesAndRouteModels"]["resources"]
    assert sorted(resolve(resource).split("/lake/", 1)[1] for resource in rewriting) == sorted(
        ["models/*", f"{lake_tables.RAW}/*", f"{PLANS}/*"])


def test_the_glue_job_runs_the_packaged_entry_point_with_the_emr_jobs_access_and_its_own_logs():
    from triplake.orchestration import INGESTION_JOB

    (job,) = resources_of("aws_glue_job").values()
    (command,) = job["command"]
    assert resolve(command["script_location"]).endswith(f"/package/{INGESTION_JOB}.py")
    assert unquote(command["name"]) == "glueetl" and resolve(job["glue_version"]) == "5.1"  # Spark 3.5.6
    assert job["security_configuration"] == "${aws_glue_security_configuration.this.name}"
    (document,) = [body for block in root_blocks("data")
                   for kind, documents in block.items() if unquote(kind) == "aws_iam_policy_document"
                   for name, body in documents.items() if unquote(name) == "glue_job"]
    assert document["source_policy_documents"] == ["${data.aws_iam_policy_document.emr_job.json}"]
    (logs,) = policy_statements("glue_job")
    assert {unquote(action).split(":")[0] for action in logs["actions"]} == {"logs"}
    assert resolve(logs["resources"][0]).endswith(":log-group:/aws-glue/*")
    airflow = {unquote(statement["sid"]): statement for statement in policy_statements("airflow")}
    assert airflow["RunTheGlueJob"]["resources"] == ["${aws_glue_job.ingestion.arn}"]


def test_every_bucket_is_the_bucket_module_and_only_the_access_log_bucket_goes_without_kms_and_logging():
    calls = {unquote(name): body for path in tf_files() for block in parsed(path).get("module", [])
             for name, body in block.items() if unquote(body["source"]).endswith("/bucket")}
    assert set(calls) == {"landing_bucket", "lake_bucket", "access_logs_bucket", "dags_bucket"}
    assert not [block for block in root_blocks("resource") if "aws_s3_bucket" in block], \
        "no bucket written out beside the module"
    for name, body in calls.items():
        if name == "access_logs_bucket":  # S3 delivers access logs to SSE-S3 only; it would log into itself
            assert "kms_key_arn" not in body and "access_logs_bucket" not in body
        else:
            assert body["kms_key_arn"] and body["access_logs_bucket"], name
