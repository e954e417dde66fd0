-- grain: one row per ingestion attempt (ingestion_id), failed or not: its status and reconciled counts,
-- rows_read = rows_valid + rows_rejected and rows_valid = duplicates_in_batch + already_present + rows_written.
-- A SUCCEEDED row is the ingestion's commit: the views show the rows of an ingestion once this row exists.
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
stored as parquet
location '${lake_root}/curated/ingestions/'
tblproperties ('parquet.compression' = 'ZSTD')
