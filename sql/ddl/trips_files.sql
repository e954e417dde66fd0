-- grain: one row per trip an ingestion published (trip_id), committed or not: query the view `trips`, which keeps
-- the trips of committed ingestions only. Hive-partitioned by region and ISO week (week_start = its Monday).
-- Files are sorted by origin latitude inside each partition, so bounding-box filters skip row groups.
-- A Delta table: engines read its files and partitions from its log (Athena takes its columns from there too).
-- ${lake_root} is the lake URI (s3://bucket/prefix), filled in from the deployment's settings.
create external table if not exists trips_files (
    trip_id string,
    origin_lon double,
    origin_lat double,
    destination_lon double,
    destination_lat double,
    started_at timestamp,
    datasource string,
    ingestion_id string
)
partitioned by (region string, week_start date)
location '${lake_root}/curated/trips/'
tblproperties ('table_type' = 'DELTA')
