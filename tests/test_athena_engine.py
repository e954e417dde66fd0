"""The Athena engine against moto: the statement and parameters Athena receives, and results read back.

moto runs no SQL: it records each query and returns results queued through its
/moto-api/static/athena/query-results endpoint, which stand in for what Athena would compute.
"""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest

from tests.conftest import MOTO_CREDENTIALS
from triplake.query.athena import AthenaEngine
from triplake.query.statement import SqlError, statement
from triplake.weekly_average import Area, BoundingBox, weekly_average


@pytest.fixture
def athena(moto_endpoint, test_settings):
    client = boto3.client("athena", endpoint_url=moto_endpoint, region_name=test_settings.aws_region, **MOTO_CREDENTIALS)
    if test_settings.athena_workgroup not in {group["Name"] for group in client.list_work_groups()["WorkGroups"]}:
        client.create_work_group(Name=test_settings.athena_workgroup, Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://athena-results/"}})
        # moto leaves each result as CSV in the output location, where awswrangler reads it (as on AWS).
        boto3.client("s3", endpoint_url=moto_endpoint, region_name=test_settings.aws_region,
                     **MOTO_CREDENTIALS).create_bucket(Bucket="athena-results")
    return client


def queue_results(endpoint: str, region: str, *results: tuple[list[tuple[str, str]], list[list[str]]]) -> None:
    """Queue result sets (column name/type pairs and rows as strings) for the next queries moto answers."""
    body = {"region": region, "results": [
        {"column_info": [{"Name": name, "Type": kind, "Label": name} for name, kind in columns],
         "rows": [{"Data": [{"VarCharValue": name} for name, _ in columns]}]
                 + [{"Data": [{"VarCharValue": cell} for cell in row]} for row in rows]}
        for columns, rows in results
    ]}
    request = urllib.request.Request(f"{endpoint}/moto-api/static/athena/query-results", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


def last_executions(client, count: int) -> list[dict]:
    ids = client.list_query_executions()["QueryExecutionIds"][-count:]
    return [client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"] for query_id in ids]


WINDOW = [("first_week", "date"), ("last_week", "date")]
ANSWER = [("weekly_average", "double"), ("trips", "bigint"), ("weeks", "bigint"), ("first_week", "date"), ("last_week", "date")]


def test_weekly_average_sends_the_sql_files_with_bound_parameters_in_the_workgroup(athena, moto_endpoint, test_settings):
    queue_results(moto_endpoint, test_settings.aws_region,
                  (WINDOW, [["2018-04-30", "2018-05-28"]]),
                  (ANSWER, [["0.0", "0", "5", "2018-04-30", "2018-05-28"]]))
    region = "x' OR '1'='1"
    result = weekly_average(AthenaEngine(test_settings), Area(region=region))

    assert result == {"weekly_average": 0.0, "trips": 0, "weeks": 5, "first_week": "2018-04-30",
                      "last_week": "2018-05-28", "area": {"region": region}, "match": None}
    window_query, average_query = last_executions(athena, 2)
    assert window_query["Query"] == statement("queries/lake_weeks").athena_query({})[0]
    expected_sql, expected_parameters = statement("queries/weekly_average_region").athena_query(
        {"region": region, "from_date": "2018-04-30", "to_date": "2018-05-28"})
    assert average_query["Query"] == expected_sql and region not in expected_sql
    assert average_query["ExecutionParameters"] == expected_parameters == ["'2018-04-30'", "'2018-05-28'", "'x'' OR ''1''=''1'"]
    for execution in (window_query, average_query):
        assert execution["WorkGroup"] == test_settings.athena_workgroup
        assert execution["QueryExecutionContext"]["Database"] == test_settings.glue_database


def test_a_bbox_with_an_explicit_window_is_one_query_whose_parameters_follow_the_placeholders(athena, moto_endpoint, test_settings):
    queue_results(moto_endpoint, test_settings.aws_region, (ANSWER, [["1.6", "8", "5", "2018-04-30", "2018-05-28"]]))
    from datetime import date

    area = Area(bbox=BoundingBox(14.4, 50.0, 14.5, 50.1), match="origin")
    result = weekly_average(AthenaEngine(test_settings), area, date(2018, 5, 1), date(2018, 5, 31))
    assert (result["weekly_average"], result["trips"], result["match"]) == (1.6, 8, "origin")
    [execution] = last_executions(athena, 1)
    # Placeholders in text order: the window CTE first, then the box's ranges.
    assert execution["ExecutionParameters"] == ["'2018-04-30'", "'2018-05-28'", "'14.4'", "'14.5'", "'50.0'", "'50.1'"]
    assert execution["Query"].count("?") == 6


def test_ddl_gets_its_location_from_the_lake_root_and_takes_no_parameters(athena, test_settings):
    ddl = statement("ddl/trips_files").with_lake_root("s3://triplake-lake/")
    AthenaEngine(test_settings).run(ddl, {})
    [execution] = last_executions(athena, 1)
    assert "LOCATION 's3://triplake-lake/curated/trips/'" in execution["Query"]
    assert "ExecutionParameters" not in execution


def test_the_same_query_with_other_parameters_is_asked_again_never_answered_from_a_cache(athena, moto_endpoint, test_settings):
    engine = AthenaEngine(test_settings)
    query = statement("queries/weekly_average_region")
    answers = []
    for region, trips in (("Prague", "34"), ("Turin", "38")):
        queue_results(moto_endpoint, test_settings.aws_region, (ANSWER, [["1.0", trips, "5", "2018-04-30", "2018-05-28"]]))
        result = engine.run(query, {"region": region, "from_date": "2018-04-30", "to_date": "2018-05-28"})
        answers.append(dict(zip(result.columns, result.rows[0])))
    assert [answer["trips"] for answer in answers] == [34, 38]
    assert [execution["ExecutionParameters"][-1] for execution in last_executions(athena, 2)] == ["'Prague'", "'Turin'"]


def test_a_failed_query_is_an_error_naming_athenas_reason(athena, test_settings):
    class FailingAthena:  # moto's queries always succeed
        def get_query_execution(self, QueryExecutionId):  # noqa: N803 - boto3's keyword
            return {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND: trips"}}}

    engine = AthenaEngine(test_settings)
    engine.client = FailingAthena()  # what the engine's own wait sees
    with pytest.raises(SqlError, match=r"lake_weeks: Athena query \S+ FAILED: TABLE_NOT_FOUND: trips"):
        engine.run(statement("queries/lake_weeks"), {})


def test_cli_creates_a_table_in_athena_under_the_lake_root_and_answers_through_athena(
        athena, moto_endpoint, test_settings, moto_cli_settings, capsys):
    from triplake import cli

    moto_cli_settings()
    assert cli.main(["sql", "--engine", "athena", "--lake-root", "s3://lake-bucket/lake",
                     "--file", "sql/ddl/weekly_trips_files.sql"]) == 0
    [execution] = last_executions(athena, 1)
    assert "LOCATION 's3://lake-bucket/lake/marts/weekly_trips/'" in execution["Query"]

    queue_results(moto_endpoint, test_settings.aws_region, (ANSWER, [["6.8", "34", "5", "2018-04-30", "2018-05-28"]]))
    assert cli.main(["weekly-average", "--engine", "athena", "--region", "Prague", "--from", "2018-04-30",
                     "--to", "2018-05-28", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["weekly_average"] == 6.8
    [execution] = last_executions(athena, 1)
    assert execution["ExecutionParameters"] == ["'2018-04-30'", "'2018-05-28'", "'Prague'"]
