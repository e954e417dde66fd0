-- grain: one row per ingestion attempt (ingestion_id), failed or not: its status and reconciled counts,
-- rows_read = rows_valid + rows_rejected and rows_valid = duplicates_in_batch + already_present + rows_written.
-- A SUCCEEDED row is the ingestion's commit: the views show the rows of an ingestion once this row exists.
-- A Delta table (one commit per row; engines read its log, so no partitions are registered). In Athena the
-- statement runs as CREATE EXTERNAL TABLE ... LOCATION ... TBLPROPERTIES ('table_type' = 'DELTA') alone: Athena
-- takes a Delta table's columns from its log; the columns here are the local engine's and Glue's.
create external table if not exists ingestions (
    ingestion_id string,
    source_uri string,
    status string,
    rows_read bigint,
    rows_valid bigint,
    rows_rejected bigint,
    duplicates_in_batch bigint,
    already_present bigint,
    rows_written bigint,
    started_at timestamp,
    finished_at timestamp,
    error string
)
location '${lake_root}/curated/ingestions/'
tblproperties ('table_type' = 'DELTA')
