"""Calendar arithmetic on UTC timestamps shared by the jobs: integer maths on microseconds, no calendar objects."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

MICROS_PER_DAY = 86_400_000_000


def week_start_of(timestamp: Column) -> Column:
    """Monday of the ISO week of a UTC timestamp, as a date: the partition value week_start=YYYY-MM-DD.

    Integer arithmetic on the day number (1970-01-01 was a Thursday, so Mondays are the days d with
    (d + 3) mod 7 = 0) instead of date_trunc('week'), which builds calendar objects for every row.
    """
    day = F.floor(F.unix_micros(timestamp) / F.lit(MICROS_PER_DAY))
    return F.date_from_unix_date(day - F.pmod(day + F.lit(3), F.lit(7)))


def day_fraction(timestamp: Column) -> Column:
    """Time of day of a UTC timestamp as a fraction of the day in [0, 1)."""
    return F.pmod(F.unix_micros(timestamp), F.lit(MICROS_PER_DAY)) / F.lit(MICROS_PER_DAY)
