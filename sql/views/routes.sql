-- grain: one row per route (region, route_id) of each region's current model: its trips, centroid and typical
-- hour of day (UTC, 0-24), and the model that defined it (version, k routes in the region, silhouette, training).
create or replace view routes as
with current_routes as (
    select route_models.*
    from route_models
    inner join route_model_versions
        on route_models.region = route_model_versions.region
        and route_models.model_version = route_model_versions.model_version
    where route_models.ingestion_id in (select ingestion_id from committed_ingestions)
),

route_trips as (
    select region, route_id, sum(trips) as trips
    from weekly_trips
    group by region, route_id
)

select
    current_routes.region,
    current_routes.route_id,
    coalesce(route_trips.trips, 0) as trips,
    current_routes.origin_lon,
    current_routes.origin_lat,
    current_routes.destination_lon,
    current_routes.destination_lat,
    current_routes.typical_hour,
    current_routes.k,
    current_routes.silhouette,
    current_routes.trained_at,
    current_routes.model_version
from current_routes
left join route_trips
    on current_routes.region = route_trips.region
    and current_routes.route_id = route_trips.route_id
