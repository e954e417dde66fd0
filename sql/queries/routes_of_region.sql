-- grain: one row per route (route_id) of one region's current model: its trips, centroid and typical hour.
-- parameters: :region
with routes as (
    select * from routes
    where region = :region
)

select
    route_id,
    trips,
    origin_lon,
    origin_lat,
    destination_lon,
    destination_lat,
    typical_hour,
    model_version
from routes
order by route_id
