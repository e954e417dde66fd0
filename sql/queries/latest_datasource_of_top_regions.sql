-- grain: one row: the datasource of the single latest trip across the two regions with the most trips.
-- Answers "From the two most commonly appearing regions, which is the latest datasource?" read as one answer.
-- Ties resolve deterministically: regions with equal counts by name, trips at the same instant by datasource.
with trips as (
    select region, started_at, datasource from trips
),

region_sizes as (
    select region, count(*) as trips
    from trips
    group by region
),

top_regions as (
    select
        region,
        row_number() over (order by trips desc, region asc) as region_rank
    from region_sizes
),

top_region_trips as (
    select
        trips.region,
        trips.datasource,
        trips.started_at,
        row_number() over (order by trips.started_at desc, trips.datasource desc) as recency_rank
    from trips
    inner join top_regions on trips.region = top_regions.region
    where top_regions.region_rank <= 2
)

select
    datasource as latest_datasource,
    region,
    started_at as latest_trip_started_at
from top_region_trips
where recency_rank = 1
