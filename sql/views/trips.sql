-- grain: one row per distinct trip (trip_id) of the committed ingestions, partitioned by region and ISO week
-- (week_start = its Monday). Filters on the coordinates reach the files' row-group statistics.
create or replace view trips as
with trips_files as (
    select * from trips_files
)

select
    trip_id,
    region,
    origin_lon,
    origin_lat,
    destination_lon,
    destination_lat,
    started_at,
    datasource,
    week_start,
    ingestion_id
from trips_files
where ingestion_id in (select ingestion_id from committed_ingestions)
