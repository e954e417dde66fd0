"""What the local stack saves at `down` and restores at `up`, against a moto server: objects of any key and the
uploads still waiting in the landing queue."""

from __future__ import annotations

import json
import uuid

from triplake.aws import clients
from triplake.local import saved_state


def test_buckets_and_pending_uploads_come_back_as_they_were(test_settings, tmp_path):
    s3, sqs = clients(test_settings, "s3", "sqs")
    landing, lake = f"saved-landing-{uuid.uuid4().hex[:8]}", f"saved-lake-{uuid.uuid4().hex[:8]}"
    for bucket in (landing, lake):
        s3.create_bucket(Bucket=bucket)
    objects = {(landing, "incoming/trips sample.csv"): b"region,...\n", (lake, "lake/curated/trips/region=S%C3%A3o/x"): b"\x00parquet",
               (lake, "lake/_lease.json"): b"{}", (lake, "lake/raw/a/same.csv"): b"region,...\n"}
    for (bucket, key), body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    queue = sqs.create_queue(QueueName=f"saved-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    upload = json.dumps({"Records": [{"s3": {"bucket": {"name": landing}, "object": {"key": "incoming/late.csv"}}}]})
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"Event": "s3:TestEvent"}))
    sqs.send_message(QueueUrl=queue, MessageBody=upload)

    counts = saved_state.save(tmp_path / "saved", s3, sqs, [landing, lake], queue)
    assert counts == {"objects": 4, "messages": 1}
    # A new stack: empty buckets, an empty queue.
    for (bucket, key) in objects:
        s3.delete_object(Bucket=bucket, Key=key)
    new_queue = sqs.create_queue(QueueName=f"saved-new-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    assert saved_state.restore(tmp_path / "saved", s3) == 4
    for (bucket, key), body in objects.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert saved_state.restore_messages(tmp_path / "saved", sqs, new_queue) == 1
    (message,) = sqs.receive_message(QueueUrl=new_queue, MaxNumberOfMessages=10)["Messages"]
    assert message["Body"] == upload  # the test event of the old notification is not replayed

    saved_state.forget(tmp_path / "saved")
    assert saved_state.restore(tmp_path / "saved", s3) == 0
