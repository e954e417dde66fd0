-- grain: one row per rejected input line (ingestion_id, line_number) of the committed ingestions: the line as
-- sent and the reason it was rejected.
create or replace view rejected_rows as
select
    ingestion_id,
    line_number,
    raw_line,
    reason
from rejected_rows_files
where ingestion_id in (select ingestion_id from committed_ingestions)
