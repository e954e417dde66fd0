-- grain: one row: the datasource of the single latest trip across the two regions with the most trips.
-- Answers "From the two most commonly appearing regions, which is the latest datasource?" read as one answer.
-- Ties resolve deterministically: regions by the view region_ranking, trips at the same instant by datasource.
with trips as (
    select region, started_at, datasource from trips
),

top_regions as (
    select region, trips, region_rank from region_ranking
    where region_rank <= 2
),

top_region_trips as (
    select
        trips.region,
        trips.datasource,
        trips.started_at,
        row_number() over (order by trips.started_at desc, trips.datasource desc) as recency_rank
    from trips
    inner join top_regions on trips.region = top_regions.region
)

select
    datasource as latest_datasource,
    region,
    started_at as latest_trip_started_at
from top_region_trips
where recency_rank = 1
