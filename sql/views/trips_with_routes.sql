-- grain: one row per distinct trip (trip_id), with the route its region's current model assigns it to
-- (every committed trip has one: an ingestion commits after its routes).
create or replace view trips_with_routes as
with trips as (
    select * from trips
),

trip_routes as (
    select trip_id, region, week_start, route_id from trip_routes
)

select
    trips.trip_id,
    trips.region,
    trip_routes.route_id,
    trips.origin_lon,
    trips.origin_lat,
    trips.destination_lon,
    trips.destination_lat,
    trips.started_at,
    trips.datasource,
    trips.week_start,
    trips.ingestion_id
from trips
left join trip_routes
    on trips.region = trip_routes.region
    and trips.week_start = trip_routes.week_start
    and trips.trip_id = trip_routes.trip_id
