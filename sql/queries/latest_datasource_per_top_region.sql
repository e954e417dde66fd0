-- grain: one row per region among the two with the most trips: the datasource of its latest trip.
-- Answers "From the two most commonly appearing regions, which is the latest datasource?" read per region.
-- Ties resolve deterministically: regions by the view region_ranking, trips at the same instant by datasource.
with trips as (
    select region, started_at, datasource from trips
),

top_regions as (
    select region, trips, region_rank from region_ranking
    where region_rank <= 2
),

latest_trips as (
    select
        trips.region,
        trips.datasource,
        trips.started_at,
        row_number() over (
            partition by trips.region order by trips.started_at desc, trips.datasource desc
        ) as recency_rank
    from trips
    inner join top_regions on trips.region = top_regions.region
)

select
    top_regions.region_rank,
    top_regions.region,
    top_regions.trips as region_trips,
    latest_trips.datasource as latest_datasource,
    latest_trips.started_at as latest_trip_started_at
from top_regions
inner join latest_trips on top_regions.region = latest_trips.region
where latest_trips.recency_rank = 1
order by top_regions.region_rank
