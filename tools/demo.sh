#!/usr/bin/env bash
# make demo: the event-driven path on the embedded default — no AWS account, no Docker.
# stack up -> watch -> upload the sample and a file of bad rows -> status events as they arrive
# -> weekly averages and the two SQL answers, read from the s3:// lake the DAG wrote -> stack down.
set -euo pipefail
cd "$(dirname "$0")/.."
triplake=.venv/bin/triplake
demo=.local/demo
rm -rf "$demo" && mkdir -p "$demo"

watcher=
finish() {
  status=$?
  [[ -n "$watcher" ]] && kill "$watcher" 2>/dev/null || true
  $triplake stack down || true
  exit "$status"
}
trap finish EXIT

$triplake stack up
eval "$($triplake stack env)"

echo; echo "Watching the status topic; uploading two files (the DAG starts by itself):"
$triplake watch --until-done --ingestions 2 --progress --timeout 240 2> "$demo/watch.log" &
watcher=$!
until grep -q "^watching" "$demo/watch.log" 2>/dev/null; do
  kill -0 "$watcher" 2>/dev/null || { cat "$demo/watch.log"; exit 1; }
  sleep 0.2
done
$triplake upload tests/fixtures/trips_sample.csv > /dev/null
$triplake upload tests/fixtures/trips_bad_rows.csv > /dev/null
wait "$watcher" || { echo "an ingestion failed or did not finish: see $(pwd)/.local/stack/airflow.log"; exit 1; }
watcher=

echo; echo "Rejected lines of trips_bad_rows.csv, kept with their reason:"
$triplake sql "select line_number, reason from rejected_rows order by ingestion_id, line_number"

echo; echo "Weekly average number of trips (ISO weeks, weeks without trips count as zero):"
for region in Prague Turin Hamburg; do $triplake weekly-average --region "$region"; done
$triplake weekly-average --bbox 14.40,50.00,14.50,50.10 --match both
$triplake weekly-average --bbox 14.40,50.00,14.50,50.10 --match any

echo; echo "From the two most commonly appearing regions, which is the latest datasource? (per region, then overall)"
$triplake sql --file sql/queries/latest_datasource_per_top_region.sql
$triplake sql --file sql/queries/latest_datasource_of_top_regions.sql
echo; echo "What regions has the cheap_mobile datasource appeared in?"
$triplake sql --file sql/queries/regions_of_datasource.sql --param datasource=cheap_mobile
