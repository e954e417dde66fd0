-- grain: one row: the weekly average of trips of which the whole trip (origin and destination) lies in a bounding box
-- (bounds inclusive) over a window of ISO weeks. The window holds the weeks whose Monday falls in
-- [monday(:from_date), monday(:to_date)]; weeks without trips count as zero.
-- Every parameter is a string (dates as YYYY-MM-DD, coordinates as decimal degrees); the filters are
-- plain ranges so that engines skip the Parquet row groups whose statistics lie outside the box.
-- parameters: :min_lon, :min_lat, :max_lon, :max_lat, :from_date, :to_date
with query_window as (
    select
        cast(date_trunc('week', cast(:from_date as date)) as date) as first_week,
        cast(date_trunc('week', cast(:to_date as date)) as date) as last_week
),

trips as (
    select week_start from trips
    where origin_lon between cast(:min_lon as double) and cast(:max_lon as double)
        and origin_lat between cast(:min_lat as double) and cast(:max_lat as double)
        and destination_lon between cast(:min_lon as double) and cast(:max_lon as double)
        and destination_lat between cast(:min_lat as double) and cast(:max_lat as double)
),

area_trips as (
    select count(*) as trips
    from trips
    inner join query_window
        on trips.week_start between query_window.first_week and query_window.last_week
)

select
    cast(area_trips.trips as double) / (date_diff('week', query_window.first_week, query_window.last_week) + 1)
    as weekly_average,
    area_trips.trips,
    date_diff('week', query_window.first_week, query_window.last_week) + 1 as weeks,
    query_window.first_week,
    query_window.last_week
from area_trips
cross join query_window
