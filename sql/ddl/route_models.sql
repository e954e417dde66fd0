-- grain: one row per route of every fitted model (region, model_version, route_id): its centroid and typical hour
-- of day (UTC, 0-24), the model's k and silhouette, when and on how many trips it was trained, and the ingestion
-- that fitted it. The view `routes` shows the current model of each region with the trips of each route. A Delta
-- table partitioned by region: a refit's clean-up takes the region's older versions out of it.
create external table if not exists route_models (
    route_id string,
    origin_lon double,
    origin_lat double,
    destination_lon double,
    destination_lat double,
    typical_hour double,
    k int,
    silhouette double,
    trained_at timestamp,
    model_version int,
    sample_rows bigint,
    ingestion_id string
)
partitioned by (region string)
location '${lake_root}/curated/route_models/'
tblproperties ('table_type' = 'DELTA')
