-- grain: one row per ingestion (ingestion_id), with whether its counts reconcile:
-- rows_read = rows_valid + rows_rejected and rows_valid = duplicates_in_batch + already_present + rows_written.
create or replace view ingestion_reconciliation as
with ingestions as (
    select * from ingestions
)

select
    ingestion_id,
    source_uri,
    status,
    rows_read,
    rows_valid,
    rows_rejected,
    duplicates_in_batch,
    already_present,
    rows_written,
    rows_read = rows_valid + rows_rejected
    and rows_valid = duplicates_in_batch + already_present + rows_written as reconciles,
    started_at,
    finished_at,
    error
from ingestions
