-- grain: one row per trip (trip_id): the route its region's model assigns it to.
-- Partitioned like trips, so a weekly rebuild reads only the weeks an ingestion touched.
create external table if not exists trip_routes (
    trip_id string,
    route_id string
)
partitioned by (region string, week_start date)
stored as parquet
location '${lake_root}/curated/trip_routes/'
tblproperties ('parquet.compression' = 'ZSTD')
