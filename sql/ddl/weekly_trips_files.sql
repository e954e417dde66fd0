-- grain: one row per region, route, ISO week, model version and ingestion: the trips that ingestion added to the
-- route in that week (a refit adds the region's whole counts under its new version). Query the view
-- `weekly_trips`, which sums them over the committed ingestions of each region's current model.
create external table if not exists weekly_trips_files (
    route_id string,
    model_version int,
    trips bigint,
    ingestion_id string
)
partitioned by (region string, week_start date)
location '${lake_root}/marts/weekly_trips/'
tblproperties ('table_type' = 'DELTA')
