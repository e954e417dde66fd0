-- grain: one row per trip (trip_id) with a route: the route its region's current model assigns it to.
create or replace view trip_routes as
with trip_routes_files as (
    select * from trip_routes_files
    where ingestion_id in (select ingestion_id from committed_ingestions)
),

route_model_versions as (
    select region, model_version from route_model_versions
)

select
    trip_routes_files.trip_id,
    trip_routes_files.region,
    trip_routes_files.route_id,
    trip_routes_files.week_start,
    trip_routes_files.model_version
from trip_routes_files
inner join route_model_versions
    on trip_routes_files.region = route_model_versions.region
    and trip_routes_files.model_version = route_model_versions.model_version
