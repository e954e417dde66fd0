-- grain: one row per region, route and ISO week with at least one trip (weeks without trips have no row):
-- the counts the committed ingestions added under the region's current model, summed.
create or replace view weekly_trips as
with weekly_trips_files as (
    select * from weekly_trips_files
    where ingestion_id in (select ingestion_id from committed_ingestions)
),

route_model_versions as (
    select region, model_version from route_model_versions
)

select
    weekly_trips_files.region,
    weekly_trips_files.route_id,
    weekly_trips_files.week_start,
    sum(weekly_trips_files.trips) as trips
from weekly_trips_files
inner join route_model_versions
    on weekly_trips_files.region = route_model_versions.region
    and weekly_trips_files.model_version = route_model_versions.model_version
group by weekly_trips_files.region, weekly_trips_files.route_id, weekly_trips_files.week_start
