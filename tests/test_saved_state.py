"""What the local stack saves at `down` and restores at `up`, against a moto server: objects of any key, the Glue
partitions and the uploads still waiting in the landing queue."""

from __future__ import annotations

import json
import uuid

from triplake.aws import clients
from triplake.local import saved_state


def test_buckets_partitions_and_pending_uploads_come_back_as_they_were(test_settings, tmp_path):
    s3, glue, sqs = clients(test_settings, "s3", "glue", "sqs")
    landing, lake, database = f"saved-landing-{uuid.uuid4().hex[:8]}", f"saved-lake-{uuid.uuid4().hex[:8]}", "saved_db"
    for bucket in (landing, lake):
        s3.create_bucket(Bucket=bucket)
    objects = {(landing, "incoming/trips sample.csv"): b"region,...\n", (lake, "lake/curated/trips/region=S%C3%A3o/x"): b"\x00parquet",
               (lake, "lake/_lease.json"): b"{}", (lake, "lake/raw/a/same.csv"): b"region,...\n"}
    for (bucket, key), body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={"Name": "trips_files", "PartitionKeys": [
        {"Name": "region", "Type": "string"}, {"Name": "week_start", "Type": "date"}]})
    partition = {"Values": ["Prague", "2018-05-28"], "StorageDescriptor": {"Location": f"s3://{lake}/lake/x/"}}
    glue.create_partition(DatabaseName=database, TableName="trips_files", PartitionInput=partition)
    queue = sqs.create_queue(QueueName=f"saved-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    upload = json.dumps({"Records": [{"s3": {"bucket": {"name": landing}, "object": {"key": "incoming/late.csv"}}}]})
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Event": "s3:TestEvent"}))
    sqs.send_message(QueueUrl=queue, MessageBody=upload)

    counts = saved_state.save(tmp_path / "saved", s3, glue, sqs, [landing, lake], database, queue)
    assert counts == {"objects": 4, "partitions": 1, "messages": 1}
    # A new stack: empty buckets, tables without partitions, an empty queue.
    for (bucket, key) in objects:
        s3.delete_object(Bucket=bucket, Key=key)
    glue.delete_partition(DatabaseName=database, TableName="trips_files", PartitionValues=partition["Values"])
    new_queue = sqs.create_queue(QueueName=f"saved-new-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    assert saved_state.restore(tmp_path / "saved", s3, glue) == {"objects": 4, "partitions": 1}
    for (bucket, key), body in objects.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    (restored,) = glue.get_partitions(DatabaseName=database, TableName="trips_files")["Partitions"]
    assert restored["Values"] == partition["Values"]
    assert restored["StorageDescriptor"]["Location"] == partition["StorageDescriptor"]["Location"]
    assert saved_state.restore_messages(tmp_path / "saved", sqs, new_queue) == 1
    (message,) = sqs.receive_message(QueueUrl=new_queue, MaxNumberOfMessages=10)["Messages"]
    assert message["Body"] == upload  # the test event of the old notification is not replayed

    saved_state.forget(tmp_path / "saved")
    assert saved_state.restore(tmp_path / "saved", s3, glue) == {"objects": 0, "partitions": 0}
