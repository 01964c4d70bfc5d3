"""Validation of a converted file: its columns against the mapping, then its rows.

Both work on the Parquet written by conversion (every value text). Row validation
streams the file batch by batch: a row whose typed value does not parse, whose required
value is empty, or that holds a NUL byte (PostgreSQL text cannot store one), is rejected
whole, with its source row number, the column, the reason and the raw values; so is a
line that repeats the header (two exports concatenated). The same value rules produce
the values the bronze load sends to PostgreSQL, so what validation accepts always
loads: row validation hands the accepted rows, typed (``pg_values``), to a
``TypedSink`` (``bronze.TypedFile``) as it goes, and the load streams them as they are.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.etl.config import Column, SourceFile
from include.etl.ingest import arrays
from include.etl.ingest.convert import (
    HEADER_METADATA,
    JSON_KEYS_METADATA,
    ROW_NUMBER_COLUMN,
    ROW_NUMBER_METADATA,
)
from include.etl.ingest.progress import Progress

log = logging.getLogger(__name__)

INTEGER = r"^[+-]?[0-9]{1,18}$"
NUMERIC = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
BOOLEAN = {
    "true": "true",
    "t": "true",
    "1": "true",
    "yes": "true",
    "false": "false",
    "f": "false",
    "0": "false",
    "no": "false",
}
REASONS = {
    "integer": "not an integer",
    "numeric": "not a number",
    "date": "not a valid date",
    "timestamp": "not a valid timestamp",
    "boolean": "not a boolean (true/false)",
}


# ------------------------------------------------------------------------- mapping
RETYPE_SAMPLE_ROWS = 10_000  # rows read to tell whether a typed column changed type
RETYPE_MIN_VALUES = 10  # non-empty values needed before a column counts as retyped


@dataclass(frozen=True)
class Retyped:
    """A typed column whose delivered values no longer parse as its registered type."""

    column: str
    registered: str  # the configured type
    delivered: str  # what the file's values look like
    sample: list[str]

    def describe(self) -> str:
        """One line for the message: ``amount (numeric -> text, e.g. 'paid')``."""
        return (
            f"{self.column} ({self.registered} -> {self.delivered}, e.g. {', '.join(map(repr, self.sample))})"
        )


@dataclass(frozen=True)
class MappingResult:
    """A file's columns against its configured mapping: missing, added, retyped, renamed."""

    missing: list[str]  # configured columns the file does not have
    extra: list[str]  # columns of the file that are not configured (added)
    renamed: dict[str, str] = field(default_factory=dict)  # delivered header -> configured name
    retyped: list[Retyped] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No column is missing and none is retyped."""
        return not self.missing

    @property
    def drifted(self) -> bool:
        """The file's schema differs from the registered one in any way."""
        return bool(self.missing or self.extra or self.retyped)


def check_mapping(parquet: Path, spec: SourceFile) -> MappingResult:
    """Compare the file's columns with the configured source columns.

    Conversion already renamed headers that differ only in case or spaces; the header
    as delivered is in the Parquet metadata, so the renaming is reported here. A typed
    column whose sampled values do not parse as its type at all is reported retyped.
    """
    schema = pq.read_schema(parquet)
    present = [n for n in schema.names if n != ROW_NUMBER_COLUMN or not has_row_numbers(schema)]
    expected = [c.source for c in spec.columns]
    delivered = json.loads((schema.metadata or {}).get(HEADER_METADATA, b"null")) or present
    renamed = {d: p for d, p in zip(delivered, schema.names, strict=False) if d != p and p in expected}
    json_keys = (pq.ParquetFile(parquet).metadata.metadata or {}).get(JSON_KEYS_METADATA)
    found = set(json.loads(json_keys)) if json_keys else set(present)  # JSON: keys some record has
    return MappingResult(
        missing=[c for c in expected if c not in found],
        extra=[c for c in present if c not in expected],
        renamed=renamed,
        retyped=_retyped(parquet, [c for c in spec.columns if c.source in present and c.type != "text"]),
    )


def has_row_numbers(schema: pa.Schema) -> bool:
    """Whether the Parquet carries its source row numbers (XLSX sheet rows)."""
    return (schema.metadata or {}).get(ROW_NUMBER_METADATA) == ROW_NUMBER_COLUMN.encode()


def _retyped(parquet: Path, columns: list[Column]) -> list[Retyped]:
    """Typed columns whose sampled values (the first rows) all fail their type."""
    if not columns:
        return []
    file = pq.ParquetFile(parquet)
    batch = next(file.iter_batches(batch_size=RETYPE_SAMPLE_ROWS, columns=[c.source for c in columns]), None)
    if batch is None:
        return []
    found = []
    for column in columns:
        values = _trimmed(batch.column(column.source)).drop_null()
        if len(values) < RETYPE_MIN_VALUES:
            continue
        valid, _ = check_values(values, column)
        if pc.any(valid).as_py():
            continue
        delivered = next(
            (
                t
                for t in ("integer", "numeric", "date", "timestamp", "boolean")
                if pc.all(check_values(values, Column(source=column.source, type=t))[0]).as_py()
            ),
            "text",
        )
        sample = pc.unique(values).slice(0, 3).to_pylist()
        found.append(Retyped(column.source, column.type, delivered, [str(v)[:40] for v in sample]))
    return found


# ------------------------------------------------------------------------- values
def check_values(values: pa.Array, column: Column) -> tuple[pa.Array, pa.Array]:
    """(valid mask, normalised text) for one column of a batch.

    Typed values are trimmed and empty means NULL; text is kept as delivered.
    """
    valid, normalised, _ = _check(values, column)
    return valid, normalised


def _check(values: pa.Array, column: Column, text: bool = True) -> tuple[pa.Array, pa.Array, pa.Array | None]:
    """(valid mask, normalised text, parsed values) for one column of a batch.

    The parsed values are the timestamps of a date or timestamp column (None for the
    other types); without ``text`` their normalised text is not made (None).
    """
    if column.type == "text":
        normalised = values
        present = pc.is_valid(values)
        valid = present if column.required else arrays.bools(np.ones(len(values), dtype=bool))
        if column.required:
            valid = pc.and_(valid, pc.not_equal(pc.utf8_trim_whitespace(values), arrays.EMPTY))
        return pc.fill_null(valid, arrays.FALSE), normalised, None

    trimmed = _trimmed(values)
    parsed = None
    if column.type in ("integer", "numeric"):
        ok, normalised = _number_ok(trimmed, column.type == "numeric"), trimmed
    elif column.type in ("date", "timestamp"):
        ok, normalised, parsed = _check_temporal(trimmed, column, text)
    else:  # boolean
        lowered = pc.utf8_lower(trimmed)
        keys = arrays.strings(list(BOOLEAN))
        ok = pc.is_in(lowered, value_set=keys)
        normalised = pc.take(arrays.strings(list(BOOLEAN.values())), pc.index_in(lowered, value_set=keys))
    is_null = pc.is_null(trimmed)
    valid = pc.or_(is_null, pc.fill_null(ok, arrays.FALSE))
    if column.required:
        valid = pc.and_(valid, pc.invert(is_null))
    return valid, normalised, parsed


class NotTypable(ValueError):
    """Values Arrow cannot type exactly as PostgreSQL would parse their text."""


MAX_DECIMAL_DIGITS = 38  # decimal128
ARROW_TYPES = {
    "text": pa.string(),
    "integer": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("s"),
    "boolean": pa.bool_(),
}


def pg_type(column: Column, sample: pa.Array) -> pa.DataType:
    """The Arrow type the bronze load sends a column as (binary COPY).

    ``numeric`` is a decimal of the scale of the sample's values: PostgreSQL keeps each
    value's scale (``9.90`` stays ``9.90``), so every value must have that one scale.
    """
    return _pg_type(column, _trimmed(sample) if column.type == "numeric" else sample)


def _pg_type(column: Column, normalised: pa.Array) -> pa.DataType:
    if column.type != "numeric":
        return ARROW_TYPES[column.type]
    scale, _ = _decimal_shape(normalised)
    return pa.decimal128(MAX_DECIMAL_DIGITS, scale or 0)


def pg_values(values: pa.Array, column: Column, arrow_type: pa.DataType) -> pa.Array:
    """The rows' values typed as the bronze load sends them: the same values as the
    normalised text of ``check_values`` parsed by PostgreSQL. Meant for rows validation
    accepted; raises ``NotTypable`` for a value it cannot type exactly."""
    if column.type == "text":
        return values
    if column.type in ("integer", "numeric"):
        return _pg_values(_trimmed(values), None, column, arrow_type)
    _, normalised, parsed = _check(values, column, text=False)
    return _pg_values(normalised, parsed, column, arrow_type)


def _pg_values(
    normalised: pa.Array, parsed: pa.Array | None, column: Column, arrow_type: pa.DataType
) -> pa.Array:
    """``pg_values`` from what ``_check`` made of the values (accepted rows only)."""
    try:
        if column.type == "text":
            return normalised
        if column.type in ("date", "timestamp"):
            if parsed is None:
                raise NotTypable(f"{column.source}: its values were not parsed")
            return parsed.cast(arrow_type)  # a date: the day of the timestamp
        if column.type == "numeric":
            scale, digits = _decimal_shape(normalised)
            if scale not in (None, arrow_type.scale) or digits > arrow_type.precision:
                raise NotTypable(f"{column.source}: numeric values of other scales or sizes")
        elif column.type == "integer":
            normalised = _unsigned_plus(normalised)
        return normalised.cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise NotTypable(f"{column.source}: {' '.join(str(exc).split())[:200]}") from exc


def _unsigned_plus(numbers: pa.Array) -> pa.Array:
    """Number text without a leading "+", which Arrow's casts refuse."""
    if pc.any(pc.starts_with(numbers, "+")).as_py():
        return pc.replace_substring_regex(numbers, r"^\+", "")
    return numbers


def _trimmed(values: pa.Array) -> pa.Array:
    """Values without surrounding white space; empty means NULL."""
    got = _string_bytes(values)
    if got is None or (len(got[1]) and (got[1].min() <= 0x20 or got[1].max() >= 0x7F)):
        trimmed = pc.utf8_trim_whitespace(values)
    else:  # printable ASCII only: no white space to trim
        trimmed = values
    empty = pc.equal(trimmed, arrays.EMPTY)
    if not pc.any(empty).as_py():
        return trimmed
    return pc.if_else(empty, arrays.null(pa.string()), trimmed)


def _string_bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """(offsets from 0, the bytes) of a string array; None for other layouts."""
    if not isinstance(values, pa.StringArray):  # chunked, large strings
        return None
    if len(values) == 0:
        return np.zeros(1, np.int32), np.zeros(0, np.uint8)
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32)[values.offset : values.offset + len(values) + 1]
    if data_buffer is None:
        return offsets - offsets[0], np.zeros(0, np.uint8)
    return offsets - offsets[0], np.frombuffer(data_buffer, np.uint8)[offsets[0] : offsets[-1]]


def _number_ok(trimmed: pa.Array, numeric: bool) -> pa.Array:
    """Which values match ``NUMERIC`` (``numeric``) or ``INTEGER``, read from the bytes:
    only the characters that are not digits are looked at one by one, so this is several
    times faster than the regular expression (which stays the definition, and the path
    for other array layouts). Says nothing of NULLs."""
    got = _string_bytes(trimmed)
    if got is None:
        return pc.match_substring_regex(trimmed, NUMERIC if numeric else INTEGER)
    offsets, data = got
    lengths = np.diff(offsets)
    others = np.flatnonzero((data - np.uint8(ord("0"))) >= 10).astype(np.int32)  # not a digit
    rows = np.searchsorted(offsets, others, side="right") - 1  # the value each is in
    char = data[others]
    sign = ((char == ord("+")) | (char == ord("-"))) & (others == offsets[rows])  # a sign first
    point = char == ord(".") if numeric else np.zeros(len(others), dtype=bool)
    digits = lengths - np.bincount(rows[sign], minlength=len(lengths)) if sign.any() else lengths
    if numeric and point.any():  # at most one decimal point
        points = np.bincount(rows[point], minlength=len(lengths))
        ok = (points <= 1) & (digits - points >= 1)
    else:
        ok = (digits >= 1) if numeric else (digits >= 1) & (digits <= 18)
    ok[rows[~(sign | point)]] = False
    return arrays.bools(ok)


def _decimal_shape(trimmed: pa.Array) -> tuple[int | None, int]:
    """(the one scale of the values, None when there is none; digits needed).

    Raises ``NotTypable`` when the values have different scales. Works on the bytes of
    the string array: numeric text is ASCII, so a byte is a character.
    """
    if isinstance(trimmed, pa.ChunkedArray):
        trimmed = trimmed.combine_chunks()
    if not pa.types.is_string(trimmed.type):
        trimmed = trimmed.cast(pa.string())
    got = _string_bytes(trimmed)
    if got is None:
        raise NotTypable(f"numeric values in an unexpected layout: {trimmed.type}")
    offsets, data = got
    starts, ends = offsets[:-1], offsets[1:]
    present = ends > starts
    if trimmed.null_count:
        present &= arrays.to_bools(trimmed.is_valid())
    if not present.any():
        return None, 0
    dots = np.flatnonzero(data == ord("."))
    point = ends.copy()  # where the decimal point is; none: the scale is 0, every digit whole
    point[np.searchsorted(offsets, dots, side="right") - 1] = dots
    starts, ends, point = starts[present], ends[present], point[present]
    scale = ends - point - (point < ends)
    signed = np.isin(data[starts], (ord("+"), ord("-")))
    low, high = int(scale.min()), int(scale.max())
    if low != high:
        raise NotTypable("numeric values of different scales")
    return high, int((point - starts - signed).max()) + high


def _check_temporal(
    trimmed: pa.Array, column: Column, text: bool = True
) -> tuple[pa.Array, pa.Array | None, pa.Array]:
    """Parse with the column's format and insist the value round-trips: (valid mask,
    normalised text or None without ``text``, the parsed timestamps).

    The round trip catches what strptime quietly rolls over (``2024-02-30``).
    """
    if column.type == "date":
        formats = [column.format or "%Y-%m-%d"]
        out_format = "%Y-%m-%d"
    elif column.format:
        formats, out_format = [column.format], "%Y-%m-%d %H:%M:%S"
    else:  # ISO, with a space or a T between date and time
        trimmed = pc.replace_substring(trimmed, "T", " ", max_replacements=1)
        formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        out_format = "%Y-%m-%d %H:%M:%S"
    ok = arrays.bools(np.zeros(len(trimmed), dtype=bool))
    values = pa.nulls(len(trimmed), pa.timestamp("s"))
    for fmt in formats:
        parsed = pc.strptime(trimmed, format=fmt, unit="s", error_is_null=True)
        round_trip = pc.equal(_strftime(parsed, fmt), trimmed)
        this_ok = pc.fill_null(round_trip, arrays.FALSE)
        values = parsed if len(formats) == 1 else pc.if_else(pc.and_(this_ok, pc.invert(ok)), parsed, values)
        ok = pc.or_(ok, this_ok)
        if ok.true_count == len(trimmed) - trimmed.null_count:  # every value read: no other format
            break
    values = pc.if_else(ok, values, arrays.null(pa.timestamp("s")))
    return ok, _strftime(values, out_format) if text else None, values


FIELDS = {  # strftime's directive: the field and its width, zero-padded
    "Y": (pc.year, 4),
    "m": (pc.month, 2),
    "d": (pc.day, 2),
    "H": (pc.hour, 2),
    "M": (pc.minute, 2),
    "S": (pc.second, 2),
}


def _strftime(values: pa.Array, fmt: str) -> pa.Array:
    """``pc.strftime(values, format=fmt)``, built from the timestamps' fields for formats
    of ``%Y %m %d %H %M %S`` and literal text: Arrow's own strftime took more than half
    of the validation of a table with one timestamp column (docs/benchmarks.md). Other
    formats go to
    Arrow's (``tests/unit/test_validation.py`` holds both to the same text)."""
    pieces: list[pa.Array | pa.Scalar] = []
    for part in re.split(r"(%.)", fmt):
        if part.startswith("%"):
            if part[1] not in FIELDS:
                return pc.strftime(values, format=fmt)
            field, width = FIELDS[part[1]]
            pieces.append(pc.utf8_lpad(pc.cast(field(values), pa.string()), width=width, padding="0"))
        elif part:
            pieces.append(arrays.string(part))
    if not any(isinstance(p, pa.Array) for p in pieces):
        return pc.strftime(values, format=fmt)
    return pc.binary_join_element_wise(*pieces, arrays.EMPTY)


# ------------------------------------------------------------------------- rows
@dataclass
class Reject:
    """One rejected row (a dead letter): its source row number, the column, why, the raw record."""

    row_number: int
    column: str | None  # None: the whole row (a repeated header)
    reason: str
    raw: dict


@dataclass
class RowResult:
    """What row validation found in a file: rows, duplicate keys and the rejected rows."""

    total: int = 0
    duplicate_keys: int = 0
    rejects: list[Reject] = field(default_factory=list)  # the dead letters kept (the first ones)
    dropped: int = 0  # rejected rows beyond the dead letters kept: counted, not stored
    duplicate_example: str | None = None  # the first duplicated key, e.g. "cst_id=3"

    @property
    def rejected(self) -> int:
        """Every rejected row, stored as a dead letter or only counted."""
        return len(self.rejects) + self.dropped

    def over_limit(self, spec: SourceFile) -> str | None:
        """Why the file fails its reject policy, or None if it passes."""
        policy = spec.reject_policy
        if policy.max_rows is not None and self.rejected > policy.max_rows:
            return f"{self.rejected} rejected rows exceed the limit of {policy.max_rows}"
        if self.total and self.rejected / self.total > policy.max_ratio:
            return (
                f"{self.rejected} of {self.total} rows rejected "
                f"({self.rejected / self.total:.1%}) exceeds the limit of {policy.max_ratio:.1%}"
            )
        if self.total and self.rejected == self.total:
            return f"all {self.total} rows rejected"
        if self.dropped:  # every rejected row the load skips must be a stored dead letter
            return (
                f"{self.rejected} rejected rows exceed the {len(self.rejects)} dead letters kept per file "
                "(reject_policy.keep_dead_letters)"
            )
        return None


def _reason(column: Column, value: object) -> str:
    if isinstance(value, str) and "\x00" in value:
        return f"{column.source}: a NUL byte in the value, which PostgreSQL text cannot hold: {value[:80]!r}"
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"required value of {column.source} is empty"
    fmt = f" ({column.format})" if column.format else ""
    return f"{column.source}: {REASONS[column.type]}{fmt}: {str(value)[:80]!r}"


def _storable(raw: dict) -> dict:
    """A raw record PostgreSQL can store as JSON: a NUL byte is written ``\\x00``."""
    return {k: v.replace("\x00", "\\x00") if isinstance(v, str) else v for k, v in raw.items()}


def _with_nul(values: pa.Array) -> pa.Array | None:
    """Which values hold a NUL byte; None when none does (the common case, told from the
    bytes without looking at values one by one)."""
    got = _string_bytes(values)
    if got is not None and got[1].all():
        return None
    found = pc.fill_null(pc.match_substring(values, "\x00"), arrays.FALSE)
    return found if pc.any(found).as_py() else None


def _header_rows(batch: pa.RecordBatch, header: list[str]) -> np.ndarray:
    """Indexes of the rows whose every value is the header's name for its column (a header
    line repeated further down, as when two exports are concatenated)."""
    names = [n for n in batch.schema.names if n != ROW_NUMBER_COLUMN]
    if len(names) != len(header) or batch.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    same: pa.Array | None = None
    for name, title in zip(names, header, strict=True):
        equal = pc.fill_null(
            pc.equal(pc.utf8_trim_whitespace(batch.column(name)), arrays.string(title.strip())), arrays.FALSE
        )
        same = equal if same is None else pc.and_(same, equal)
        if not pc.any(same).as_py():  # the first column alone rules out almost every row
            return np.zeros(0, dtype=np.int64)
    if same is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(arrays.to_bools(same))


def _delivered_header(file: pq.ParquetFile, spec: SourceFile) -> list[str] | None:
    """The header line as delivered (CSV, XLSX); JSON records have no header line."""
    metadata = file.schema_arrow.metadata or {}
    if spec.type == "json" or HEADER_METADATA not in metadata:
        return None
    return [n for n in json.loads(metadata[HEADER_METADATA]) if n != ROW_NUMBER_COLUMN]


def row_numbers(batch: pa.RecordBatch, first_row: int, has_row_numbers: bool) -> np.ndarray:
    """The source row number of each row of a batch: the file's own (XLSX sheet rows)
    where conversion recorded them, else the row's position (1 = the first data row)."""
    if has_row_numbers:
        return arrays.to_int64s(batch.column(ROW_NUMBER_COLUMN))
    return np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)


class TypedSink(Protocol):
    """Where ``validate_rows`` sends the accepted rows, typed for bronze (``bronze.TypedFile``)."""

    def write(self, columns: list[pa.Array], types: list[pa.DataType], numbers: np.ndarray) -> None: ...

    def fail(self, reason: str) -> None: ...


def validate_rows(
    parquet: Path, spec: SourceFile, batch_rows: int = 64 * 1024, typed: TypedSink | None = None
) -> RowResult:
    """Check every row; keep the first ``keep_dead_letters`` rejected rows, count the rest.

    With ``typed``, the accepted rows also go there, batch by batch, typed as the bronze
    load sends them (``pg_values``), with their source row numbers. The types are those of
    the first batch that has accepted rows (a numeric column's scale above all); values
    that cannot be typed exactly end the typed rows (``typed.fail``), not the validation.
    """
    result = RowResult()
    keep = spec.reject_policy.keep_dead_letters
    progress = Progress(log, f"validate rows {parquet.name}")
    keys: list[pa.Table] = []
    key_names = [c.name for c in spec.columns if c.name in spec.key_columns]
    types: list[pa.DataType] | None = None
    file = pq.ParquetFile(parquet)
    numbered = has_row_numbers(file.schema_arrow)
    header = _delivered_header(file, spec)
    for batch in file.iter_batches(batch_size=batch_rows):
        numbers = row_numbers(batch, result.total + 1, numbered)
        rejected = np.zeros(batch.num_rows, dtype=bool)
        found: list[tuple[int, Column | None]] = []  # (index in the batch, first bad column)
        if header is not None:
            repeated = _header_rows(batch, header)
            rejected[repeated] = True
            found += [(int(i), None) for i in repeated]
        checked: list[tuple[pa.Array | None, pa.Array | None]] = []  # (normalised, parsed) per column
        for column in spec.columns:
            values = batch.column(column.source)
            valid, normalised, parsed = _check(
                values, column, text=column.name in key_names
            )  # only a key needs a date's normalised text
            nul = _with_nul(values)
            if nul is not None:
                valid = pc.and_(valid, pc.invert(nul))
            checked.append((normalised, parsed))
            bad = np.flatnonzero(~arrays.to_bools(valid) & ~rejected)
            if len(bad):
                rejected[bad] = True
                found += [(int(i), column) for i in bad]
        found.sort(key=lambda item: item[0])
        room = max(keep - len(result.rejects), 0)
        kept, result.dropped = found[:room], result.dropped + max(len(found) - room, 0)
        if kept:
            raws = batch.take(arrays.int64s(np.array([i for i, _ in kept]))).to_pylist()
            for (index, failing), raw in zip(kept, raws, strict=True):
                raw.pop(ROW_NUMBER_COLUMN, None)  # the row number is not part of the record
                number = int(numbers[index])
                if failing is None:  # a sheet row is its line; a CSV row is one below the header
                    reason = f"the header repeated at line {number if numbered else number + 1}"
                    result.rejects.append(Reject(number, None, reason, _storable(raw)))
                else:
                    reason = _reason(failing, raw[failing.source])
                    result.rejects.append(Reject(number, failing.source, reason, _storable(raw)))
        if rejected.any():  # the accepted rows of what is used further: once, for keys and typed rows
            accepted = arrays.bools(~rejected)
            checked = [
                (_filter(n, accepted), _filter(p, accepted))
                if typed is not None or c.name in key_names
                else (n, p)
                for c, (n, p) in zip(spec.columns, checked, strict=True)
            ]
            numbers = numbers[~rejected]
        if key_names:  # keys compare as they will load
            by_name = {
                c.name: _key_values(c, n)
                for c, (n, _) in zip(spec.columns, checked, strict=True)
                if c.name in key_names
            }
            keys.append(pa.table([by_name[k] for k in key_names], names=key_names))
        if typed is not None and len(numbers):
            try:
                types = _write_typed(typed, spec, checked, numbers, types)
            except NotTypable as exc:
                typed.fail(str(exc))
                typed = None
        result.total += batch.num_rows
        progress.add(batch.num_rows)
    if typed is not None and types is None:  # no accepted row: no typed row either
        types = [_pg_type(c, pa.nulls(0, pa.string())) for c in spec.columns]
        typed.write([pa.nulls(0, t) for t in types], types, np.zeros(0, np.int64))
    if keys:
        table = pa.concat_tables(keys)
        result.duplicate_keys, row = _duplicates([table.column(k) for k in key_names])
        if row is not None:
            first = table.slice(row, 1).to_pylist()[0]
            result.duplicate_example = ", ".join(f"{k}={first[k]}" for k in key_names)
    result.rejects.sort(key=lambda r: r.row_number)
    progress.done()
    return result


def _key_values(column: Column, normalised: pa.Array | None) -> pa.Array | None:
    """A key column's values as they compare in bronze: an integer key as its number
    (``007`` and ``7`` are one key, and 8 bytes a row are all a file's keys keep)."""
    if column.type != "integer" or normalised is None:
        return normalised
    return _unsigned_plus(normalised).cast(pa.int64())


def _duplicates(columns: list[pa.ChunkedArray]) -> tuple[int, int | None]:
    """(rows whose key an earlier row has, the first row whose key another row has)."""
    if len(columns) == 1 and columns[0].type == pa.int64() and not columns[0].null_count:
        values = arrays.to_int64s(columns[0])  # one integer key, the usual case: sorted, no hashing
        ordered = np.sort(values)
        repeated = ordered[1:] == ordered[:-1]
        count = int(repeated.sum())
        if not count:
            return 0, None
        return count, int(np.flatnonzero(np.isin(values, ordered[1:][repeated]))[0])
    codes = _key_codes(columns)
    per_key = np.bincount(codes)
    count = int((per_key[per_key > 1] - 1).sum())
    return count, int(np.flatnonzero(per_key[codes] > 1)[0]) if count else None


def _key_codes(columns: list[pa.ChunkedArray]) -> np.ndarray:
    """One number per row, equal exactly when the rows' keys are (NULL equal to NULL):
    each column's codes (an integer column without NULLs: its values' ranks; any other:
    its dictionary codes), combined column by column and renumbered from 0 after each (so
    the numbers stay below the rows, and ``np.bincount`` of them small). Not a
    ``group_by``: that imports Arrow's query engine, and pandas with it."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for i, column in enumerate(columns):
        values = column.combine_chunks()
        if values.type == pa.int64() and not values.null_count:
            distinct, ranks = np.unique(arrays.to_int64s(values), return_inverse=True)
            codes = codes * max(len(distinct), 1) + ranks.astype(np.int64)
        else:
            encoded = pc.dictionary_encode(values, null_encoding="encode")
            codes = codes * max(len(encoded.dictionary), 1) + arrays.to_int64s(encoded.indices)
        if i > 0:  # two columns combined: below rows squared, renumbered below rows
            codes = np.unique(codes, return_inverse=True)[1].astype(np.int64)
    return codes


def _filter(values: pa.Array | None, mask: pa.Array) -> pa.Array | None:
    return None if values is None else values.filter(mask)


def _write_typed(
    typed: TypedSink,
    spec: SourceFile,
    checked: list[tuple[pa.Array | None, pa.Array | None]],
    numbers: np.ndarray,
    types: list[pa.DataType] | None,
) -> list[pa.DataType]:
    """Send a batch's accepted rows, typed, to ``typed``; returns the types (decided by
    the first batch)."""
    if types is None:
        types = [_pg_type(c, n) for c, (n, _) in zip(spec.columns, checked, strict=True)]
    columns = [_pg_values(n, p, c, t) for c, (n, p), t in zip(spec.columns, checked, types, strict=True)]
    typed.write(columns, types, numbers)
    return types
