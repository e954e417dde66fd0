-- grain: one row per trip, model version and ingestion that assigned it (trip_id, model_version, ingestion_id):
-- the route the region's model of that version gives the trip. Query the view `trip_routes`, which keeps the
-- rows of committed ingestions under each region's current model. Partitioned like trips.
create external table if not exists trip_routes_files (
    trip_id string,
    route_id string,
    model_version int,
    ingestion_id string
)
partitioned by (region string, week_start date)
location '${lake_root}/curated/trip_routes/'
tblproperties ('table_type' = 'DELTA')
