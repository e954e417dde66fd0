-- grain: one row per `triplake forget` (erasure_id): the selection it erased (never the erased values or trip ids:
-- a list of ids is named by its file's sha256), when, by whom, and how many rows of each table and lines of the
-- raw copies went. A Delta table, appended to once per erasure.
create external table if not exists erasures (
    erasure_id string,
    selection string,
    trips bigint,
    trip_routes bigint,
    weekly_partitions bigint,
    rejected_rows bigint,
    raw_lines bigint,
    raw_files bigint,
    files_deleted bigint,
    erased_at timestamp,
    erased_by string
)
location '${lake_root}/curated/erasures/'
tblproperties ('table_type' = 'DELTA')
