-- grain: one row per committed ingestion (ingestion_id): those whose record says SUCCEEDED. Every view over the
-- lake's files keeps the rows of these ingestions only, so a query never sees half of an ingestion.
create or replace view committed_ingestions as
select ingestion_id
from ingestions
where status = 'SUCCEEDED'
