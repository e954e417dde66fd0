-- grain: one row per rejected input line (ingestion_id, line_number): the line as sent and why it was rejected,
-- committed or not. Query the view `rejected_rows`, which keeps the lines of committed ingestions only.
create external table if not exists rejected_rows_files (
    ingestion_id string,
    line_number bigint,
    raw_line string,
    reason string
)
location '${lake_root}/curated/rejected_rows/'
tblproperties ('table_type' = 'DELTA')
