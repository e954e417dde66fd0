-- grain: one row per region with routes: its current model version, the latest one a committed ingestion fitted.
create or replace view route_model_versions as
with route_models as (
    select region, model_version, ingestion_id from route_models
),

committed_ingestions as (
    select ingestion_id from committed_ingestions
)

select
    route_models.region,
    max(route_models.model_version) as model_version
from route_models
inner join committed_ingestions
    on route_models.ingestion_id = committed_ingestions.ingestion_id
group by route_models.region
