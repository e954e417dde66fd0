"""The same ingest job against s3:// URIs on a moto server, through the S3A jars."""

from __future__ import annotations

import io

import boto3
import pyarrow.parquet as pq

from spark_jobs import ingest
from spark_jobs.common import publish
from spark_jobs.common.lake import Lake
from spark_jobs.common.lakefs import LakeFs
from tests.conftest import MOTO_CREDENTIALS, SAMPLE, lake_rows
from triplake.lake_records import read_record


def test_sample_ingested_from_s3_into_an_s3_lake(spark, moto_endpoint, test_settings):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **MOTO_CREDENTIALS)
    s3.create_bucket(Bucket="landing")
    s3.create_bucket(Bucket="lake")
    s3.upload_file(str(SAMPLE), "landing", "incoming/trips sample.csv")  # a space, as users name files

    result = ingest.ingest_file(spark, "s3://landing/incoming/trips sample.csv", "s3://lake/triplake")

    assert result.status == "SUCCEEDED", result.error
    assert result.counts.rows_written == 100
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="lake", Prefix="triplake/")["Contents"]]
    trip_files = [key for key in keys if key.startswith("triplake/curated/trips/") and key.endswith(".parquet")]
    assert len(trip_files) == 15  # 3 regions x 5 weeks
    rows = 0
    for key in trip_files:
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket="lake", Key=key)["Body"].read()))
        rows += table.num_rows
        assert "trip_id" in table.column_names
    assert rows == 100
    raw_key = f"triplake/raw/{result.ingestion_id}/trips sample.csv"
    assert s3.get_object(Bucket="lake", Key=raw_key)["Body"].read() == SAMPLE.read_bytes()
    assert lake_rows("s3://lake/triplake", "select count(*) as n from trips", test_settings) == [{"n": 0}]

    publish.commit(spark, LakeFs(spark), Lake("s3://lake/triplake"), result.ingestion_id)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="lake", Prefix="triplake/")["Contents"]]
    assert read_record("s3://lake/triplake", test_settings, result.ingestion_id)["status"] == "SUCCEEDED"
    assert any(key.startswith("triplake/curated/ingestions/_delta_log/") for key in keys)
    assert not [key for key in keys if key.startswith("triplake/_staging/") and result.ingestion_id in key]
    assert lake_rows("s3://lake/triplake", "select count(*) as n from trips", test_settings) == [{"n": 100}]
