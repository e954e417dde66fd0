"""Parsing one file's lines, as pure DataFrame transforms: the header, RFC 4180 fields, encodings, WKT points, a
reject reason per line (the first that applies), the trip's identity, and where each line sits in the file."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.common import tables
from spark_jobs.common.identity import ORIGIN_LAT_KEY, with_trip_identity
from spark_jobs.common.input_format import INPUT_COLUMNS, POINT_COLUMNS, RAW_BYTES_PREFIX, InvalidFileError

FIELD_PADDING = ' "'  # blanks and quotes around a field
# Row groups of ~200k trips (~16 MiB) instead of Parquet's 128 MiB: files are sorted by origin latitude, so a
# bounding-box query skips the row groups whose min/max statistics lie outside the box (docs/benchmarks.md).
TRIPS_ROW_GROUP_ROWS = 200_000
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
