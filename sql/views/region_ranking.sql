-- grain: one row per region: its number of trips and its rank by that number
-- (1 = the most trips; regions with equal counts are ranked by name, so the ranking is deterministic).
create or replace view region_ranking as
with trips as (
    select region from trips
)

select
    region,
    count(*) as trips,
    row_number() over (order by count(*) desc, region asc) as region_rank
from trips
group by region
