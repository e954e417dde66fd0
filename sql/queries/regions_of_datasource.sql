-- grain: one row per region in which a datasource has trips, with how many.
-- Answers "What regions has the cheap_mobile datasource appeared in?" with :datasource = 'cheap_mobile'.
-- parameters: :datasource
with trips as (
    select region, datasource from trips
)

select
    region,
    count(*) as trips
from trips
where datasource = :datasource
group by region
order by trips desc, region asc
