-- grain: one row per region, route and ISO week with at least one trip (weeks without trips have no row).
create external table if not exists weekly_trips (
    route_id string,
    trips bigint
)
partitioned by (region string, week_start date)
stored as parquet
location '${lake_root}/marts/weekly_trips/'
tblproperties ('parquet.compression' = 'ZSTD')
