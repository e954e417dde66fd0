-- grain: one row per trip (trip_id) of one region: its origin, destination and route.
-- parameters: :region
with trips_with_routes as (
    select * from trips_with_routes
    where region = :region
)

select
    trip_id,
    route_id,
    origin_lon,
    origin_lat,
    destination_lon,
    destination_lat
from trips_with_routes
