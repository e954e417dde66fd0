"""Ingest one CSV file of trips into the lake: the first step of an ingestion.

    recover interrupted ingestions -> raw copy -> header check -> parse and validate every line -> trip_id
             -> deduplicate inside the file (one shuffle, one sort) -> staged Parquet
             -> look the staged trips up in the lake partitions they touch (restage without them if any)
             -> publish (record, then move the staged files into curated/trips and curated/rejected_rows)

The file is parsed once: the counts come from observations on that pass. The lake is read only where the
file has trips (its (region, week_start) partitions), one column of it, and never shuffled: its cost grows
with the partitions a file touches, not with the lake.

Nothing a user sent is lost: the file is copied unchanged to raw/ first, every rejected line is kept in
rejected_rows with its line number and reason, and the counts reconcile:
    rows_read = rows_valid + rows_rejected
    rows_valid = duplicates_in_batch + already_present + rows_written

What this step publishes is seen by readers only when the ingestion commits, after its routes and weeks
(spark_jobs.common.publish). Writers are one at a time (the lake's lease); an ingestion that died before it
committed is rolled back by the next one before it starts, so a rerun leaves exactly the rows a clean run leaves.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from pyspark.sql import Column, DataFrame, Observation, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_jobs.common import publish, session, tables
from spark_jobs.common.ingestions import INGESTION_ID_PATTERN, new_ingestion_id
from spark_jobs.common.job import JobOutcome, run_job
from spark_jobs.common.lake import Lake, partition_path, partition_value, write_single_parquet
from spark_jobs.common.lakefs import FileInfo, LakeFs
from spark_jobs.common.times import week_start_of

logger = logging.getLogger(__name__)

INPUT_COLUMNS = ("region", "origin_coord", "destination_coord", "datetime", "datasource")
POINT_COLUMNS = ("origin_coord", "destination_coord")
FIELD_PADDING = ' "'  # blanks and quotes around a field
TRIP_ID_DECIMALS = 7
# Coordinates enter trip_id as integers: degrees x 10^7 rounded half to even (Math.rint), exact and cheap.
COORDINATE_SCALE = 10.0**TRIP_ID_DECIMALS
# The rounded origin latitude leads the sort of every trips file (bbox pruning) and keys the dedupe, so
# one sort serves both; it is a pure function of origin_lat, recomputed the same way for lake rows.
ORIGIN_LAT_KEY = "origin_lat_e7"
# Row groups of ~16 MiB (~200k trips) instead of Parquet's 128 MiB: files are sorted by origin latitude, so a
# bounding-box query skips the row groups whose min/max statistics lie outside the box (docs/benchmarks.md).
TRIPS_ROW_GROUP_BYTES = 16 * 2**20
MAX_LONGITUDE = 180.0
MAX_LATITUDE = 90.0
# A region becomes a directory name (region=...): nothing that could leave or fake that directory.
UNSAFE_REGION_PATTERN = r"[/\\=\x00-\x1f\x7f]|\.\."

# Reject reasons, checked in this order: a line gets the first that applies.
BAD_ENCODING = "bad_encoding"
UNCLOSED_QUOTE = "unclosed_quote"
WRONG_FIELD_COUNT = "wrong_field_count"
EMPTY_REGION = "empty_region"
UNSAFE_REGION = "unsafe_region"
BAD_ORIGIN_COORD = "bad_origin_coord"
ORIGIN_OUT_OF_RANGE = "origin_out_of_range"
BAD_DESTINATION_COORD = "bad_destination_coord"
DESTINATION_OUT_OF_RANGE = "destination_out_of_range"
BAD_DATETIME = "bad_datetime"
EMPTY_DATASOURCE = "empty_datasource"
REJECT_REASONS = (
    BAD_ENCODING,
    UNCLOSED_QUOTE,
    WRONG_FIELD_COUNT,
    EMPTY_REGION,
    UNSAFE_REGION,
    BAD_ORIGIN_COORD,
    ORIGIN_OUT_OF_RANGE,
    BAD_DESTINATION_COORD,
    DESTINATION_OUT_OF_RANGE,
    BAD_DATETIME,
    EMPTY_DATASOURCE,
)

QUOTE = '"'
# RFC 4180: a quoted field may hold commas and doubled quotes ("Turin ""Centro"""). Lines with a quote go through
# Spark's own CSV parser (from_csv); the rest, nearly every line, through a plain split. Blanks around a field are
# not part of it (lenient, unlike RFC 4180), and a quoted field cannot span lines: the text source splits lines first.
CSV_OPTIONS = {
    "escape": QUOTE,  # a doubled quote inside a quoted field is one quote
    "nullValue": "\u0000",  # so that an empty field stays "" and only a missing one is null (the field count)
    "ignoreLeadingWhiteSpace": "true",
    "ignoreTrailingWhiteSpace": "true",
    "mode": "PERMISSIVE",
}
# A rejected line that is not valid UTF-8 is kept as its exact bytes, base64-encoded after this prefix.
RAW_BYTES_PREFIX = "base64:"

SUCCEEDED = publish.SUCCEEDED
FAILED = publish.FAILED


class InvalidFileError(ValueError):
    """The file as a whole cannot be ingested (no header, wrong columns, unreadable); nothing reaches trips."""

    kind = "invalid_file"


# What Hadoop's readers say about a file they cannot read, and what the user should hear instead.
UNREADABLE_FILE_SIGNS = (
    (("Unexpected end of input stream", "Unexpected end of ZLIB input stream", "EOFException"),
     "the gzip data ends before its end (the file was truncated or cut off in transfer): upload the whole file again"),
    (("not a gzip file", "Not in GZIP format", "incorrect header check", "ZipException"),
     "the file is named .gz but is not gzip data: compress it with gzip, or upload it as .csv"),
    (("AccessDenied", "Access Denied", "Forbidden"),
     "the file cannot be read (access denied): give the pipeline read access to it and upload it again"),
)


def unreadable_file_error(source_uri: str, failure: BaseException) -> InvalidFileError | None:
    """An InvalidFileError naming why a file could not be read, when Spark's failure says it was the file's fault."""
    text = str(failure)
    for signs, meaning in UNREADABLE_FILE_SIGNS:
        if any(sign in text for sign in signs):
            return InvalidFileError(f"{source_uri} cannot be read: {meaning}")
    return None


def binary_header_error(header_line: str) -> InvalidFileError | None:
    """An InvalidFileError when the first line is not text: a spreadsheet, an image, Parquet, or UTF-16 text."""
    controls = sum(1 for char in header_line if (ord(char) < 32 and char not in "\t\r") or char == "\ufffd")
    if "\x00" in header_line or controls > max(2, len(header_line) // 20):
        return InvalidFileError(
            "the file is not a UTF-8 text CSV file (its first line holds binary data: a spreadsheet, Parquet, an "
            "image, or text saved as UTF-16): export the trips as CSV in UTF-8 and upload that"
        )
    return None


# --------------------------------------------------------------------------------------------------
# Pure transforms
# --------------------------------------------------------------------------------------------------


def column_positions(header_line: str | None) -> dict[str, int]:
    """Position of each input column in the header; raises InvalidFileError naming what is wrong."""
    expected = ",".join(INPUT_COLUMNS)
    if header_line is None or not header_line.strip():
        raise InvalidFileError(f"the file is empty: expected a CSV header line '{expected}' and rows of trips")
    names = [name.strip().strip('"').strip().lower() for name in header_line.lstrip("\ufeff").split(",")]
    missing = [name for name in INPUT_COLUMNS if name not in names]
    unknown = [name for name in names if name not in INPUT_COLUMNS]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems = [
        f"{label}: {', '.join(repr(n) for n in values)}"
        for label, values in (("missing", missing), ("unknown", unknown), ("repeated", repeated))
        if values
    ]
    if problems:
        raise InvalidFileError(
            f"the header does not match the trips format ({'; '.join(problems)}). "
            f"Expected the columns '{expected}' (in any order); fix the header and upload the file again."
        )
    return {name: names.index(name) for name in INPUT_COLUMNS}


def split_fields(lines: DataFrame, positions: dict[str, int]) -> DataFrame:
    """Every line split into the five input fields (by their positions in the header), and its field count.

    A line without a quote is split on commas: WKT points hold no comma, so that is exact for the trips format and
    far cheaper than a CSV parser. A line with a quote is parsed as RFC 4180 CSV (CSV_OPTIONS), and only those pay
    for it. A line with another number of fields is rejected later with wrong_field_count. Each step is its own
    select so that Spark computes the split and the parse once per line, not once per use.
    """
    expected = len(INPUT_COLUMNS)
    # One more field than expected: a line with too many fields fills it and is told apart from a full one.
    schema = ", ".join(f"field_{index} STRING" for index in range(expected + 1))
    split = lines.select(
        "value",
        F.split("value", ",").alias("parts"),
        F.when(F.col("value").contains(QUOTE), F.from_csv(F.col("value"), schema, CSV_OPTIONS)).alias("quoted"),
    )
    is_quoted = F.col("quoted").isNotNull()

    def field(name: str) -> Column:
        index = positions[name]
        # Blanks around a field are not part of its value (the CSV parser trims them itself). Points are left as
        # they are: their fast path needs the exact text, and the strict parser trims for itself.
        plain = F.try_element_at("parts", F.lit(index + 1))
        plain = plain if name in POINT_COLUMNS else F.trim(plain)
        return F.when(is_quoted, F.col("quoted")[f"field_{index}"]).otherwise(plain).alias(name)

    quoted_count = sum((F.col("quoted")[f"field_{index}"].isNotNull().cast("int") for index in range(expected + 1)),
                       F.lit(0))
    return split.select(
        "value",
        F.when(is_quoted, quoted_count).otherwise(F.size("parts")).alias("field_count"),
        is_quoted.alias("is_quoted"),
        *[field(name) for name in INPUT_COLUMNS],
    )


def is_bad_encoding(value: Column) -> Column:
    """True for a line that is not valid UTF-8. Spark keeps a text line's bytes as they are; only lines with a
    non-ASCII byte (more bytes than characters) pay for the check that they survive a decode and encode unchanged."""
    return (F.length(value) != F.octet_length(value)) & (F.encode(value, "UTF-8") != value.cast("binary"))


def has_unclosed_quote(value: Column) -> Column:
    """True for a line with an odd number of quotes: a quoted field that does not close on its line."""
    quotes = F.length(value) - F.length(F.regexp_replace(value, QUOTE, ""))
    return F.pmod(quotes, F.lit(2)) == 1


def kept_line(raw_line: Column, reason: Column) -> Column:
    """The rejected line as it is kept in rejected_rows: its text, or for a line that is not UTF-8 its exact
    bytes in base64 after RAW_BYTES_PREFIX (text with replacement characters would lose them)."""
    as_bytes = F.concat(F.lit(RAW_BYTES_PREFIX), F.base64(raw_line.cast("binary")))
    return F.when(reason == BAD_ENCODING, as_bytes).otherwise(raw_line)


def _point_inner(wkt_column: str) -> Column:
    """The text between the parentheses of a WKT 'POINT (lon lat)'; null when the text is not a point."""
    wkt = F.btrim(F.col(wkt_column), F.lit(FIELD_PADDING))
    open_at = F.instr(wkt, "(")
    keyword = F.upper(F.trim(wkt.substr(F.lit(1), open_at - 1)))
    inner = wkt.substr(open_at + 1, F.length(wkt) - open_at - 1)
    return F.when((open_at > 0) & (keyword == "POINT") & wkt.endswith(")"), inner)


def _strict_point_numbers(wkt_column: str) -> Column:
    """[lon, lat] texts for any spelling of a 2D WKT point (case, blanks, quotes), null for anything else."""
    # Split on single blanks and drop the empty pieces: any run of blanks separates, without a regex.
    numbers = F.array_remove(F.split(_point_inner(wkt_column), " "), "")
    return F.when(F.size(numbers) == 2, numbers)


def point_numbers(wkt_column: str) -> tuple[Column, Column]:
    """(lon, lat) texts of a WKT point; null when the text is not a 2D point.

    Nearly every line spells its points exactly 'POINT (lon lat)'. That spelling is recognised with a few
    substring operations and one comparison; only other spellings pay for the strict parse (when()
    evaluates its second branch for those lines alone).
    """
    wkt = F.col(wkt_column)
    inner = F.substring_index(F.substring_index(wkt, "(", -1), ")", 1)
    lon, lat = F.substring_index(inner, " ", 1), F.substring_index(inner, " ", -1)
    canonical = wkt == F.concat(F.lit("POINT ("), lon, F.lit(" "), lat, F.lit(")"))
    strict = _strict_point_numbers(wkt_column)
    return (
        F.when(canonical, lon).otherwise(F.element_at(strict, 1)),
        F.when(canonical, lat).otherwise(F.element_at(strict, 2)),
    )


def _try_cast(column: str, type_name: str) -> Column:
    # try_cast is ANSI-safe on Spark 3.5 and 4 alike: bad text becomes null instead of failing the job.
    return F.expr(f"try_cast(`{column}` AS {type_name})")


def parse_fields(fields: DataFrame) -> DataFrame:
    """Typed trip columns from the text fields, without UDFs; unparseable values become null."""
    origin_lon, origin_lat = point_numbers("origin_coord")
    destination_lon, destination_lat = point_numbers("destination_coord")
    texts = fields.select(
        "value",
        "field_count",
        "is_quoted",
        "region",
        origin_lon.alias("origin_lon_text"),
        origin_lat.alias("origin_lat_text"),
        destination_lon.alias("destination_lon_text"),
        destination_lat.alias("destination_lat_text"),
        "datetime",
        "datasource",
    )
    return texts.select(
        "value",
        "field_count",
        "is_quoted",
        "region",
        _try_cast("origin_lon_text", "DOUBLE").alias("origin_lon"),
        _try_cast("origin_lat_text", "DOUBLE").alias("origin_lat"),
        _try_cast("destination_lon_text", "DOUBLE").alias("destination_lon"),
        _try_cast("destination_lat_text", "DOUBLE").alias("destination_lat"),
        _try_cast("datetime", "TIMESTAMP").alias("started_at"),
        "datasource",
    )


def _in_range(lon: str, lat: str) -> Column:
    # NaN compares greater than every number in Spark, so it fails these bounds too.
    return F.col(lon).between(-MAX_LONGITUDE, MAX_LONGITUDE) & F.col(lat).between(-MAX_LATITUDE, MAX_LATITUDE)


def with_reject_reason(parsed: DataFrame) -> DataFrame:
    """Adds reject_reason: null for a valid trip, else the first failing check of REJECT_REASONS."""
    reason = (
        F.when(is_bad_encoding(F.col("value")), BAD_ENCODING)
        .when(F.col("is_quoted") & has_unclosed_quote(F.col("value")), UNCLOSED_QUOTE)
        .when(F.col("field_count") != len(INPUT_COLUMNS), WRONG_FIELD_COUNT)
        .when(F.coalesce(F.col("region"), F.lit("")) == "", EMPTY_REGION)
        .when(F.col("region").rlike(UNSAFE_REGION_PATTERN), UNSAFE_REGION)
        .when(F.col("origin_lon").isNull() | F.col("origin_lat").isNull(), BAD_ORIGIN_COORD)
        .when(~_in_range("origin_lon", "origin_lat"), ORIGIN_OUT_OF_RANGE)
        .when(F.col("destination_lon").isNull() | F.col("destination_lat").isNull(), BAD_DESTINATION_COORD)
        .when(~_in_range("destination_lon", "destination_lat"), DESTINATION_OUT_OF_RANGE)
        .when(F.col("started_at").isNull(), BAD_DATETIME)
        .when(F.coalesce(F.col("datasource"), F.lit("")) == "", EMPTY_DATASOURCE)
    )
    return parsed.withColumn("reject_reason", reason)


def scaled_coordinate(column: str) -> Column:
    """Degrees x 10^7 rounded half to even, as a long: the 7-decimal rounding of the trip identity.

    Integer arithmetic instead of round(x, 7), which goes through BigDecimal and cost a third of the parse.
    -0.0 and 0.0 become the same 0.
    """
    return F.rint(F.col(column) * F.lit(COORDINATE_SCALE)).cast("long")


def with_trip_identity(trips: DataFrame) -> DataFrame:
    """Adds trip_id, week_start (Monday, a date) and the origin latitude key of the sort.

    trip_id = md5 of 'region|origin lon|origin lat|destination lon|destination lat|start', coordinates as
    degrees x 10^7 rounded to integers and the start in microseconds since the epoch (UTC): reproducible
    in any SQL engine, and the datasource is not part of it.
    """
    identity = F.concat_ws(
        "|",
        F.col("region"),
        scaled_coordinate("origin_lon").cast("string"),
        scaled_coordinate("origin_lat").cast("string"),
        scaled_coordinate("destination_lon").cast("string"),
        scaled_coordinate("destination_lat").cast("string"),
        F.expr("unix_micros(started_at)").cast("string"),
    )
    return trips.select(
        "*",
        F.md5(identity).alias("trip_id"),
        week_start_of(F.col("started_at")).alias("week_start"),
        scaled_coordinate("origin_lat").alias(ORIGIN_LAT_KEY),
    )


# A line's position inside its block fits in the low 33 bits of monotonically_increasing_id.
_ROW_IN_PARTITION_MASK = (1 << 33) - 1


def locate_lines(lines: DataFrame) -> DataFrame:
    """Adds where each line sits in the file: the block Spark read it in and its order inside the block,
    and line_order, one number that grows with the line's position in the file.

    line_order = block start (a byte offset) + rank of the line in its block: a block of n bytes holds at
    most n lines, so the next block's lines all order after. Used to let the earliest copy of a trip win.
    Must run before any filter, so that every physical line is counted. Being non-deterministic, this
    projection is also a barrier the optimizer does not push filters through: a filter on reject_reason
    placed after it stays a filter on a column instead of being inlined as a copy of the whole parse.
    """
    located = lines.select(
        "*",
        F.input_file_block_start().alias("block_start"),
        F.monotonically_increasing_id().alias("row_id"),
    )
    return located.withColumn(
        "line_order", F.col("block_start") + F.col("row_id").bitwiseAND(F.lit(_ROW_IN_PARTITION_MASK))
    )


def parse_lines(lines: DataFrame, positions: dict[str, int], header_line: str) -> DataFrame:
    """Every data line (not blank, not a repeat of the header), typed, with its locators, reject_reason
    (null when valid), trip_id, week_start and the origin latitude key.

    Columns of rejected lines hold whatever could be parsed; only valid rows (reject_reason null) are trips.
    """
    checked = with_reject_reason(parse_fields(split_fields(lines, positions)))
    located = locate_lines(with_trip_identity(checked))
    # A blank line has one field: only those pay for the trim (a trim of every line cost 10% of the CPU).
    is_blank = (F.col("field_count") == 1) & (F.trim("value") == "")
    return located.where(~is_blank & (F.col("value") != header_line)).select(
        F.col("value").alias("raw_line"),
        "block_start",
        "row_id",
        "line_order",
        "reject_reason",
        *trip_payload_columns(),
        "trip_id",
        "week_start",
        ORIGIN_LAT_KEY,
    )


def trip_payload_columns() -> list[str]:
    return [name for name in tables.TRIPS_SCHEMA.fieldNames() if name not in ("trip_id", "week_start", "ingestion_id")]


def rank_copies(batch: DataFrame) -> DataFrame:
    """Every valid row of the batch with first_copy: true for the earliest line of each trip in the file.

    batch: valid parsed rows (trip columns, trip_id, week_start, origin_lat_e7, line_order).
    One shuffle by (region, week_start), the way the output is written, and one sort whose first key is the
    origin latitude: the same order then serves the dedupe and the bbox-friendly layout of the files.
    """
    # The trip's identity leads: partitioning by it (region and week follow from trip_id) keeps the
    # window's sort on a cheap integer prefix instead of region and week, which tie on every row.
    trip = Window.partitionBy(ORIGIN_LAT_KEY, "trip_id", "region", "week_start").orderBy("line_order")
    return (
        batch.repartition(*tables.TRIPS_PARTITION_COLUMNS)
        .select("*", (F.row_number().over(trip) == 1).alias("first_copy"))
    )


TRIP_HASH = "trip_hash"
NEW, LAKE = "new", "lake"  # the two sides of the lake lookup


def trips_in_lake(new_trip_ids: DataFrame, lake_trip_ids: DataFrame, broadcast: str | None = NEW) -> DataFrame:
    """The rows of new_trip_ids whose trip_id lake_trip_ids holds too (both: one column, trip_id).

    Neither side is shuffled in full: the 64-bit hashes of the smaller side (`broadcast`: NEW or LAKE) are
    broadcast and the other side streams past them once; only the few ids whose hash matches are then compared
    exactly (a hash collision costs a comparison, never a lost trip). broadcast=None leaves both joins to Spark,
    for sides too large to broadcast.
    """
    small, large = (lake_trip_ids, new_trip_ids) if broadcast == LAKE else (new_trip_ids, lake_trip_ids)
    hashes = small.select(F.xxhash64("trip_id").alias(TRIP_HASH))
    candidates = (
        large.select("trip_id", F.xxhash64("trip_id").alias(TRIP_HASH))
        .join(F.broadcast(hashes) if broadcast else hashes, on=TRIP_HASH, how="left_semi")
        .select("trip_id")
    )
    if broadcast == LAKE:  # candidates are new rows: keep those the lake really holds
        return candidates.join(lake_trip_ids, on="trip_id", how="left_semi")
    return new_trip_ids.join(candidates, on="trip_id", how="left_semi")


def without_trips(staged: DataFrame, trip_ids: DataFrame) -> DataFrame:
    """The staged trips minus trip_ids, laid out again as a trips write expects: by partition, and each
    partition sorted by origin latitude (then trip_id, so the order is total and a rerun gives the same files)."""
    return (
        staged.join(trip_ids, on="trip_id", how="left_anti")
        .repartition(*tables.TRIPS_PARTITION_COLUMNS)
        .sortWithinPartitions(scaled_coordinate("origin_lat"), "trip_id")
        .select(*tables.TRIPS_SCHEMA.fieldNames())
    )


def number_rejected_lines(rejected: DataFrame, lines: DataFrame) -> DataFrame:
    """Rejected rows with their 1-based line number in the file.

    Spark reads a file in blocks; a line's number is the number of lines in the blocks before it plus its
    position inside its own block. Both come from the same read of the file, so they agree.
    """
    block_order = Window.orderBy("block_start").rowsBetween(Window.unboundedPreceding, -1)
    blocks = (
        lines.groupBy("block_start")
        .agg(F.count(F.lit(1)).alias("lines"), F.min("row_id").alias("first_row_id"))
        .withColumn("lines_before", F.coalesce(F.sum("lines").over(block_order), F.lit(0)))
    )
    return rejected.join(F.broadcast(blocks), on="block_start", how="inner").select(
        (F.col("lines_before") + F.col("row_id") - F.col("first_row_id") + 1).alias("line_number"),
        "raw_line",
        F.col("reject_reason").alias("reason"),
    )


# --------------------------------------------------------------------------------------------------
# I/O and the ingestion protocol
# --------------------------------------------------------------------------------------------------


@dataclass
class Counts:
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    duplicates_in_batch: int = 0
    already_present: int = 0
    rows_written: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict, compare=False)

    def reconciles(self) -> bool:
        return (
            self.rows_read == self.rows_valid + self.rows_rejected
            and self.rows_valid == self.duplicates_in_batch + self.already_present + self.rows_written
        )


@dataclass
class IngestionResult:
    ingestion_id: str
    source_uri: str
    raw_uri: str | None
    status: str
    counts: Counts
    started_at: datetime
    finished_at: datetime
    error: dict | None = None
    partitions_written: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "ingestion_id": self.ingestion_id,
            "source_uri": self.source_uri,
            "raw_uri": self.raw_uri,
            "status": self.status,
            **asdict(self.counts),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "error": self.error,
            "partitions_written": [list(partition) for partition in self.partitions_written],
        }


@contextmanager
def _timed(step: str):
    started = time.perf_counter()
    yield
    logger.info("%s: %.1f s", step, time.perf_counter() - started)


def raw_name(name: str) -> str:
    """The name of the raw copy: the file's own, with a gzip suffix in lower case (Hadoop picks the codec by the
    exact suffix '.gz', so 'TRIPS.CSV.GZ' would otherwise be read as text)."""
    return name[: -len(".gz")] + ".gz" if name.lower().endswith(".gz") else name


def read_lines(spark: SparkSession, uri: str) -> DataFrame:
    """Every physical line of the file, as the column `value`."""
    return spark.read.text(uri)


def _first_line(spark: SparkSession, uri: str) -> str | None:
    first = spark.read.text(uri).head(1)
    return first[0]["value"] if first else None


def _lake_partition_dirs(fs: LakeFs, lake: Lake) -> dict[str, set[str]]:
    """Directory names of the trips partitions in the lake: region dir -> its week dirs (a listing)."""
    return {
        region.name: {week.name for week in fs.list(region.uri) if week.is_dir}
        for region in fs.list(lake.uri(tables.TRIPS))
        if region.is_dir
    }


# Above this much Parquet on both sides, no side's hashes are broadcast and Spark shuffles both (about 20M trips).
MAX_BROADCAST_PARQUET_BYTES = 2**30


def lake_trip_files(fs: LakeFs, lake: Lake, partitions: set[str]) -> list[FileInfo]:
    """The trips files the lake holds in these partitions ('region=../week_start=..'): a listing, nothing read."""
    existing = _lake_partition_dirs(fs, lake)
    return [
        entry
        for partition in sorted(partitions)
        if partition.split("/")[1] in existing.get(partition.split("/")[0], ())
        for entry in fs.list(lake.uri(tables.TRIPS, partition))
        if entry.name.endswith(".parquet")
    ]


def read_trip_ids(spark: SparkSession, root: str, files: list[str], started: tuple[datetime, datetime]) -> DataFrame:
    """trip_id of the trips in these files (partitioned under root) that started within [first, last].

    A trip's identity includes its start, so a trip outside the new trips' time span cannot be one of them:
    the filter is pushed down to Parquet, which skips every row group whose started_at range lies outside
    (an upload of the next days reads nothing of the week it shares with the lake).
    """
    columns = T.StructType([tables.TRIPS_SCHEMA["trip_id"], tables.TRIPS_SCHEMA["started_at"]])
    return (
        spark.read.schema(columns).option("basePath", root).parquet(*files)
        .where(F.col("started_at").between(*started))
        .select("trip_id")
    )


def _staged_files(fs: LakeFs, staging_dir: str) -> list[tuple[FileInfo, str]]:
    """(file, path relative to staging_dir) of every Parquet file written under staging_dir."""
    staged = []
    for region_dir in fs.list(staging_dir):
        for week_dir in fs.list(region_dir.uri) if region_dir.is_dir else []:
            for part in fs.list(week_dir.uri) if week_dir.is_dir else []:
                if part.name.endswith(".parquet"):
                    staged.append((part, f"{region_dir.name}/{week_dir.name}/{part.name}"))
    return staged


def _write_trips(trips: DataFrame, uri: str) -> None:
    (
        trips.write.mode("overwrite")
        .option("parquet.block.size", TRIPS_ROW_GROUP_BYTES)
        .partitionBy(*tables.TRIPS_PARTITION_COLUMNS)
        .parquet(uri)
    )


def _restage_without_lake_trips(
    spark: SparkSession,
    fs: LakeFs,
    lake: Lake,
    publication: publish.Publication,
    staged_trips: str,
    started: tuple[datetime, datetime],
) -> tuple[str, int]:
    """Looks the staged trips up in the lake; returns where the trips to publish are staged and how many of the
    staged trips the lake already held (staged again without them, when there were any).

    Only the lake's trips in the partitions the staged trips fall in, and that started within their time span,
    are read (`read_trip_ids`); usually there are none, and nothing is looked up at all.
    """
    staged_files = _staged_files(fs, staged_trips)
    lake_files = lake_trip_files(fs, lake, {relative.rsplit("/", 1)[0] for _, relative in staged_files})
    if not lake_files:
        return staged_trips, 0
    lake_ids = read_trip_ids(spark, lake.uri(tables.TRIPS), [entry.uri for entry in lake_files], started)
    if lake_ids.isEmpty():
        return staged_trips, 0
    with _timed(f"look up the staged trips in the {len(lake_files)} lake files of the partitions they touch"):
        staged = spark.read.option("basePath", staged_trips).parquet(staged_trips)
        staged_bytes, lake_bytes = sum(entry.size for entry, _ in staged_files), sum(entry.size for entry in lake_files)
        smaller = LAKE if lake_bytes < staged_bytes else NEW
        present = trips_in_lake(
            staged.select("trip_id"),
            lake_ids,
            broadcast=smaller if min(staged_bytes, lake_bytes) <= MAX_BROADCAST_PARQUET_BYTES else None,
        ).persist()
        already_present = present.count()
    if already_present:
        with _timed(f"restage without the {already_present} trips the lake already holds"):
            new_trips = publication.stage("new_trips")
            _write_trips(without_trips(staged, present), new_trips)
            staged_trips = new_trips
    present.unpersist()
    return staged_trips, already_present


def ingest_file(
    spark: SparkSession, source_uri: str, lake_root: str, ingestion_id: str | None = None
) -> IngestionResult:
    """Begins an ingestion and publishes the file's trips and rejected rows (not visible until the ingestion
    commits, after its routes and weeks: spark_jobs.common.publish). An invalid file is recorded FAILED at once."""
    session.configure(spark)
    started_at = datetime.now(timezone.utc)
    ingestion_id = ingestion_id or new_ingestion_id(started_at)
    if not INGESTION_ID_PATTERN.match(ingestion_id):
        raise ValueError(f"ingestion id {ingestion_id!r} must be letters, digits, '.', '_' or '-'")
    fs, lake = LakeFs(spark), Lake(lake_root)
    publish.check_lease(fs, lake, ingestion_id)
    publish.recover(spark, fs, lake)
    if fs.exists(lake.ingestion_record(ingestion_id)):
        raise ValueError(f"ingestion {ingestion_id} is recorded already: ingest the file again under a new id")
    intent = {"ingestion_id": ingestion_id, "source_uri": source_uri, "started_at": started_at.isoformat()}
    publish.write_intent(fs, lake, intent)

    raw_uri = None
    try:
        if not fs.exists(source_uri):
            raise InvalidFileError(f"the file {source_uri} does not exist or cannot be read")
        raw_uri = lake.uri(tables.RAW, ingestion_id, raw_name(source_uri.rstrip("/").rsplit("/", 1)[-1]))
        fs.copy(source_uri, raw_uri)  # nothing a user sent is ever lost
        try:
            counts, partitions = _ingest_raw_copy(spark, fs, lake, raw_uri, ingestion_id)
        except Exception as failure:  # Spark's reader failed: the file's fault (truncated gzip...) or not
            invalid = unreadable_file_error(source_uri, failure)
            if invalid is None:
                raise
            raise invalid from failure
        status, error = SUCCEEDED, None
        publish.write_intent(fs, lake, intent | {"raw_uri": raw_uri, "counts": asdict(counts)})
    except InvalidFileError as invalid:
        counts, partitions = Counts(), []
        status, error = FAILED, {"kind": InvalidFileError.kind, "message": str(invalid)}
        publish.abort(spark, fs, lake, ingestion_id, error)  # records the FAILED ingestion: nothing was published

    return IngestionResult(
        ingestion_id=ingestion_id,
        source_uri=source_uri,
        raw_uri=raw_uri,
        status=status,
        counts=counts,
        started_at=started_at,
        finished_at=datetime.now(timezone.utc),
        error=error,
        partitions_written=partitions,
    )


def _ingest_raw_copy(
    spark: SparkSession, fs: LakeFs, lake: Lake, raw_uri: str, ingestion_id: str
) -> tuple[Counts, list[tuple[str, str]]]:
    header_line = _first_line(spark, raw_uri)
    binary = binary_header_error(header_line or "")
    if binary is not None:
        raise binary
    positions = column_positions(header_line)  # raises for a missing header line
    publication = publish.Publication(spark, fs, lake, ingestion_id, "ingest").begin()

    lines = read_lines(spark, raw_uri)
    with _timed("parse, deduplicate inside the file and stage its trips (one pass over the file)"):
        parsed = parse_lines(lines, positions, header_line)
        is_valid = F.col("reject_reason").isNull()
        line_counts = Observation("lines")
        copy_counts = Observation("copies")
        observed_lines = parsed.observe(
            line_counts,
            F.count(F.lit(1)).alias("rows_read"),
            *[F.count(F.when(F.col("reject_reason") == reason, 1)).alias(reason) for reason in REJECT_REASONS],
        )
        trips = (
            rank_copies(observed_lines.where(is_valid))
            .observe(
                copy_counts,
                F.count(F.when(~F.col("first_copy"), 1)).alias("duplicates"),
                F.count(F.when(F.col("first_copy"), 1)).alias("trips"),
                F.min("started_at").alias("first_start"),
                F.max("started_at").alias("last_start"),
            )
            .where(F.col("first_copy"))
            .withColumn("ingestion_id", F.lit(ingestion_id))
            .select(*tables.TRIPS_SCHEMA.fieldNames())
        )
        # No sort here: rows arrive ordered by origin latitude from the dedupe, and the writer keeps one file
        # open per partition (session.JOB_SQL_CONF), so each file is sorted for bbox pruning as it is written.
        staged_trips = publication.stage("trips")
        _write_trips(trips, staged_trips)
        read, copies = line_counts.get, copy_counts.get

    staged_trips, already_present = _restage_without_lake_trips(
        spark, fs, lake, publication, staged_trips, (copies["first_start"], copies["last_start"])
    )

    rejected_by_reason = {reason: int(read[reason]) for reason in REJECT_REASONS if read[reason]}
    rows_rejected = sum(rejected_by_reason.values())
    rows_valid = int(read["rows_read"]) - rows_rejected
    if rows_rejected:
        with _timed("stage rejected rows"):
            rejected = number_rejected_lines(parsed.where(~is_valid), locate_lines(read_lines(spark, raw_uri)))
            write_single_parquet(
                rejected.withColumn("raw_line", kept_line(F.col("raw_line"), F.col("reason")))
                .withColumn("ingestion_id", F.lit(ingestion_id))
                .select(*tables.REJECTED_ROWS_SCHEMA.fieldNames())
                .orderBy("line_number"),
                publication.stage("rejected"),
                publication.stage("rejected.parquet"),
                fs,
            )
            publication.add(publication.stage("rejected.parquet"), lake.rejected_path(ingestion_id))

    counts = Counts(
        rows_read=int(read["rows_read"]),
        rejected_by_reason=rejected_by_reason,
        rows_valid=rows_valid,
        rows_rejected=rows_rejected,
        duplicates_in_batch=int(copies["duplicates"]),
        already_present=already_present,
        rows_written=int(copies["trips"]) - already_present,
    )
    if not counts.reconciles():
        raise RuntimeError(f"counts do not reconcile, nothing was published: {counts}")

    staged = _staged_files(fs, staged_trips)
    for entry, relative in staged:
        partition, name = relative.rsplit("/", 1)
        publication.add(entry.uri, f"{tables.TRIPS}/{partition}/{ingestion_id}-{name}")
    publication.publish()
    partitions = sorted(
        {tuple(partition_value(spark, directory) for directory in relative.split("/")[:2]) for _, relative in staged}
    )
    return counts, partitions


def _run(spark: SparkSession, args) -> JobOutcome:
    result = ingest_file(spark, args.input, args.lake_root, args.ingestion_id)
    report = result.to_dict() | {
        "partition_paths": [partition_path(spark, *partition) for partition in result.partitions_written]
    }
    return JobOutcome(result.ingestion_id, report, succeeded=result.status == SUCCEEDED)


def _arguments(parser) -> None:
    parser.add_argument("--input", required=True, help="URI of the CSV or CSV.gz file (file://, s3://)")
    parser.add_argument("--ingestion-id", help="id to use (default: time-based and unique)")


def main(argv: list[str] | None = None) -> int:
    return run_job("ingest", __doc__, _arguments, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
