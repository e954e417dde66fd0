"""The lake's writer lease as the jobs and the orchestrator both read it (standard library only).

One object at the lake root, `_lease.json`, names the writer that may write the lake (one ingestion, or a batch of
them: a `triplake run` of several files, a DAG batch), the ingestions it may publish, and until when. The process
that starts the jobs takes it and keeps it alive (`triplake.lease`: an S3 conditional write or an O_EXCL file,
whichever the lake is on); the jobs only check it before they publish, so a job whose writer lost the lease stops
instead of writing beside the new holder (a fence).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

LEASE_FILE = "_lease.json"


class LeaseLostError(RuntimeError):
    """This ingestion does not hold the lake's writer lease (any more): nothing more is published."""


@dataclass(frozen=True)
class LeaseRecord:
    """Who writes the lake: the writer and the ingestions it may publish, the program and machine holding it, and
    until when."""

    writer: str  # the ingestion's id, or the batch's
    ingestions: tuple[str, ...]  # what the writer's jobs may publish
    owner: str  # what holds it, for people: "triplake run on host (pid 123)", "DAG trips_ingest run ..."
    host: str
    pid: int | None  # set when one process holds the lease for its whole life: a dead pid frees it at once
    acquired_at: str  # ISO 8601, UTC
    expires_at: str  # ISO 8601, UTC
    token: str  # changes with every write: what a compare-and-swap on a file:// lease compares
    # Set when the holder gave the lake back by marking the lease released instead of deleting it (an S3 without
    # conditional deletes, e.g. LocalStack 4.13): the lake is free, as if there were no lease.
    released_at: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LeaseRecord:
        data = json.loads(text)
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__} | {
            "ingestions": tuple(data.get("ingestions") or ())})

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(timezone.utc)) >= datetime.fromisoformat(self.expires_at)

    def describe(self) -> str:
        return f"{self.writer} ({self.owner}), acquired {self.acquired_at}, expires {self.expires_at}"


def check_held(lease_text: str | None, ingestion_id: str) -> None:
    """Raises LeaseLostError unless the lease's writer may publish this ingestion and has not expired.

    No lease at all (or a released one) is accepted: a job started by hand on a lake nobody else writes (the tests, a
    one-off rerun).
    """
    if lease_text is None:
        return
    lease = LeaseRecord.from_json(lease_text)
    if lease.released_at:
        return
    if ingestion_id not in lease.ingestions:
        raise LeaseLostError(
            f"the lake is being written by {lease.describe()}, not by ingestion {ingestion_id}'s writer: this step stops "
            "without publishing anything (start ingestions through `triplake run` or the DAG, which wait for the lake)"
        )
    if lease.expired():
        raise LeaseLostError(
            f"the writer lease of {lease.writer} expired at {lease.expires_at}: another writer may take "
            "the lake over, so this step stops without publishing anything; run the file again"
        )
