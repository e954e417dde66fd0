-- grain: one row per region that has routes (region), with how many.
with routes as (
    select region from routes
)

select
    region,
    count(*) as routes
from routes
group by region
order by region
