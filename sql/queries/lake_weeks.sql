-- grain: one row: the ISO weeks (named by their Mondays) of the earliest and the latest trip in the whole lake,
-- the default window of every weekly average, so all areas are measured over the same weeks.
with weekly_trips as (
    select week_start from weekly_trips
)

select
    min(week_start) as first_week,
    max(week_start) as last_week
from weekly_trips
