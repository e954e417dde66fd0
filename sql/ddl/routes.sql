-- grain: one row per route (region, route_id): its size, centroid and typical hour of day (UTC, 0-24),
-- and the model that defined it (k routes in the region, silhouette, when it was trained).
create external table if not exists routes (
    region string,
    route_id string,
    trips bigint,
    origin_lon double,
    origin_lat double,
    destination_lon double,
    destination_lat double,
    typical_hour double,
    k int,
    silhouette double,
    trained_at timestamp
)
stored as parquet
location '${lake_root}/curated/routes/'
tblproperties ('parquet.compression' = 'ZSTD')
