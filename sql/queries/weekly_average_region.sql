-- grain: one row: the weekly average of trips in one region over a window of ISO weeks.
-- The window holds the weeks whose Monday falls in [monday(:from_date), monday(:to_date)]; weeks without
-- trips count as zero. Every parameter is a string (dates as YYYY-MM-DD).
-- parameters: :region, :from_date, :to_date
with query_window as (
    select
        cast(date_trunc('week', cast(:from_date as date)) as date) as first_week,
        cast(date_trunc('week', cast(:to_date as date)) as date) as last_week
),

weekly_trips as (
    select week_start, trips from weekly_trips
    where region = :region
),

area_trips as (
    select coalesce(sum(weekly_trips.trips), 0) as trips
    from weekly_trips
    inner join query_window
        on weekly_trips.week_start between query_window.first_week and query_window.last_week
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
