"""`triplake generate`: the input format, determinism, duplicates, planted routes and their ground truth."""

from __future__ import annotations

import csv
import gzip
from collections import Counter

import pytest

from triplake.generate import HEADER, REGIONS, GenerateOptions, generate


def read_rows(path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="") as handle:
        return list(csv.reader(handle))


def point(text):
    assert text.startswith("POINT (") and text.endswith(")")
    lon, lat = text[len("POINT ("):-1].split(" ")
    return float(lon), float(lat)


def test_rows_are_in_the_exact_input_format_inside_their_region(tmp_path):
    out = tmp_path / "trips.csv"
    assert generate(GenerateOptions(rows=2_000, seed=1), out) == 2_000
    header, *rows = read_rows(out)
    assert header == list(HEADER)
    assert len(rows) == 2_000
    for region, origin, destination, started, datasource in rows:
        box = REGIONS[region]
        for lon, lat in (point(origin), point(destination)):
            assert box.min_lon <= lon <= box.max_lon and box.min_lat <= lat <= box.max_lat
        assert len(started) == 19 and started.startswith("2018-05-")
        assert datasource
    assert {row[0] for row in rows} == set(REGIONS)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    options = GenerateOptions(rows=250_000, seed=7, duplicate_rate=0.05)  # several chunks, several workers
    generate(options, tmp_path / "a.csv")
    generate(options, tmp_path / "b.csv")
    generate(GenerateOptions(rows=250_000, seed=8, duplicate_rate=0.05), tmp_path / "c.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()


def test_duplicate_rate_makes_exact_copies(tmp_path):
    out = tmp_path / "trips.csv"
    generate(GenerateOptions(rows=10_000, seed=3, duplicate_rate=0.1), out)
    rows = [tuple(row) for row in read_rows(out)[1:]]
    assert len(rows) - len(set(rows)) == pytest.approx(1_000, abs=60)


def test_ground_truth_names_the_planted_route_of_every_line(tmp_path):
    out, truth = tmp_path / "trips.csv.gz", tmp_path / "truth.csv"
    generate(GenerateOptions(rows=20_000, seed=5, noise_rate=0.2, routes_per_region=4), out, truth)
    rows = read_rows(out)[1:]
    header, *labels = read_rows(truth)
    assert header == ["line_number", "route"]
    assert [int(number) for number, _ in labels] == list(range(2, 20_002))
    routes = Counter(route for _, route in labels)
    assert routes["noise"] == pytest.approx(4_000, rel=0.1)
    assert len(routes) == 3 * 4 + 1
    # a planted route is tight: its trips start near one hotspot, in the route's region
    by_route = {}
    for (region, origin, *_), (_, route) in zip(rows, labels):
        if route != "noise":
            assert route.startswith(region + "-r")
            by_route.setdefault(route, []).append(point(origin))
    for points in by_route.values():
        lons = sorted(lon for lon, _ in points)
        assert lons[int(len(lons) * 0.9)] - lons[int(len(lons) * 0.1)] < 0.05  # ~2.5 km across 80% of trips


@pytest.mark.parametrize("bad", [{"rows": -1}, {"rows": 10, "duplicate_rate": 1.0}, {"rows": 10, "regions": ("Atlantis",)}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        GenerateOptions(**bad)
