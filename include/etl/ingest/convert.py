"""Convert a delivered file (CSV, XLSX, JSON) to Parquet, streaming in bounded memory.

Every value is kept as text, exactly as delivered (empty -> NULL): typing is the job of
validation, so conversion never loses a value. Parquet is snappy-compressed with large
row groups and written to a temporary name first, then renamed: a killed conversion
leaves no half-written Parquet behind. A thread of its own reads the next row group
while the current one is written, so at most two row groups are held at a time.

A CSV file is read once: the bytes the CSV reader consumes are hashed (the sha256 of the
result, for the file audit) and their quote characters counted (an odd count is the sign
of an unclosed quoted value) as they go by.

A file that cannot be read as configured raises ``ConvertError`` with one line an
operator can act on: an unclosed quote (with the line it opens on), a row with too many
fields (with its line), the wrong delimiter or encoding, a UTF-16 file without a byte
order mark, a workbook whose header is not on the configured row. A byte order mark
decides the encoding (UTF-8 or UTF-16) whatever the config says. Header names that
differ from the configured ones only in case or spaces (``" Customer ID"``,
``customer id``) are renamed to the configured name; the header as delivered is kept in
the Parquet metadata (``source_header``) so validation can log the renaming. XLSX rows
carry their sheet row number (column ``dwh_row_number``), so dead letters and bronze
rows point at the row the operator sees in the workbook.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as concurrent_wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from include.etl.config import SourceFile
from include.etl.ingest.landing import partial_path
from include.etl.ingest.progress import Progress

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 256 * 1024
CSV_BLOCK_BYTES = 512 * 1024  # small blocks: pyarrow's streaming reader reads ahead ~35 blocks
CHUNK_ROWS = 64 * 1024  # rows per batch for the row-by-row readers (XLSX, JSON)
MAX_ROW_BYTES = 8 * 1024 * 1024  # a CSV row longer than this is refused
ROW_NUMBER_COLUMN = "dwh_row_number"  # the source row number, where it is not the ordinal
HEADER_METADATA = b"source_header"  # the header as delivered (JSON list)
JSON_KEYS_METADATA = b"json_keys"  # JSON sources: every key some record has (JSON list)
ROW_NUMBER_METADATA = b"row_numbers"  # names ROW_NUMBER_COLUMN when the Parquet has it
DELIMITERS = (",", ";", "\t", "|")


class ConvertError(ValueError):
    """The file cannot be read as configured; the message says why in one line."""


@dataclass(frozen=True)
class ConvertResult:
    """What a conversion wrote: rows, columns, seconds, and the raw file's sha256."""

    rows: int
    columns: list[str]
    seconds: float
    sha256: str  # of the raw file, as delivered


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


class _RawFile:
    """The raw CSV file as the CSV reader consumes it, read once for three purposes.

    Every byte read goes through ``read_buffer``, in file order: it is hashed and its
    quote characters are counted on the way. The bytes land in Arrow's memory pool, as
    when Arrow reads a file by itself. Arrow reads ahead on a thread of its own, so a
    lock keeps the bytes in order; ``finish`` reads whatever the CSV reader left unread
    (it stopped on an error), so the hash and the count always cover the whole file.
    Arrow may close the stream it was given: the file itself is closed by ``release``.
    """

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 (closed by release())
        self._digest = hashlib.sha256()
        self._lock = threading.Lock()
        self._scratch = np.empty(0, dtype=bool)
        self.quotes = 0
        self.closed = False
        self.encoding: str | None = None  # set once the CSV reader knows it

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read_buffer(self, size: int) -> pa.Buffer:
        buffer = pa.allocate_buffer(max(size, 0), resizable=True)
        with self._lock:
            got = 0 if self._handle.closed else self._handle.readinto(memoryview(buffer))
            buffer.resize(got)
            self._digest.update(buffer)
            data = np.frombuffer(buffer, dtype=np.uint8)
            if len(self._scratch) < got:
                self._scratch = np.empty(got, dtype=bool)
            self.quotes += int(np.count_nonzero(np.equal(data, ord('"'), out=self._scratch[:got])))
        return buffer

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = max(os.fstat(self._handle.fileno()).st_size - self._handle.tell(), 0)
        return self.read_buffer(size).to_pybytes()

    def close(self) -> None:
        self.closed = True

    def finish(self) -> None:
        while self.read_buffer(8 * 1024 * 1024).size:
            pass

    def sha256(self) -> str:
        self.finish()
        return self._digest.hexdigest()

    def release(self) -> None:
        with self._lock:
            self._handle.close()


class _RowTooLong(Exception):
    """A CSV row does not fit the read block: read again with bigger blocks."""


def convert_to_parquet(src: Path, dest: Path, spec: SourceFile) -> ConvertResult:
    """Convert a delivered file to Parquet at ``dest`` (written aside, then renamed).

    Every value stays text as delivered. A file that cannot be read as configured raises
    ``ConvertError`` with one line an operator can act on.
    """
    try:
        return _convert(src, dest, spec, CSV_BLOCK_BYTES)
    except _RowTooLong:
        line, longest = _longest_line(src)
        if longest > MAX_ROW_BYTES:
            raise ConvertError(
                f"{src.name}: line {line} is {longest:,} bytes long, over the limit of "
                f"{MAX_ROW_BYTES // (1024 * 1024)} MiB per row"
            ) from None
        block = 1 << (2 * longest + 1).bit_length()
        log.warning("%s: line %d is %s bytes long: reading in %s-byte blocks", src.name, line, longest, block)
        return _convert(src, dest, spec, block)


def _convert(src: Path, dest: Path, spec: SourceFile, block_size: int) -> ConvertResult:
    progress = Progress(log, f"convert {src.name}")
    tmp = partial_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | None = None
    columns: list[str] = []
    renames: dict[str, str] = {}
    metadata: dict[bytes, bytes] = {}
    json_keys: set[str] = set()
    raw = _RawFile(src) if spec.type in ("csv", "database") else None  # a database source: its CSV
    if raw is not None:
        batches = _csv_batches(src, spec, block_size, raw)
    elif spec.type == "xlsx":
        batches = _xlsx_batches(src, spec)
    else:
        batches = _json_batches(src, spec, json_keys)
    try:
        try:
            with contextlib.closing(_row_groups(batches, ROW_GROUP_ROWS)) as groups:
                for group in groups:
                    if writer is None:
                        writer, columns, renames, metadata = _open_writer(tmp, src, spec, group[0].schema)
                    if renames:
                        group = [batch.rename_columns(columns) for batch in group]
                    rows = sum(batch.num_rows for batch in group)
                    if rows:  # header only: no row group
                        _write(writer, group, metadata)
                    progress.add(rows)
                    del group  # let the row group go before the next one arrives
        except Exception:
            if raw is not None:  # an unclosed quote explains a failure to read: say that instead
                _check_quotes(src, spec, raw)
            raise
        if raw is not None:
            _check_quotes(src, spec, raw)
            sha256 = raw.sha256()
        else:
            sha256 = file_sha256(src)  # XLSX and JSON: read by their own readers, hashed apart
        if writer is None:
            raise ConvertError(f"{src.name}: the file is empty (no header row)")
        if spec.type == "json":  # known only now: which configured keys no record has
            writer.add_key_value_metadata(
                {JSON_KEYS_METADATA: json.dumps(sorted(json_keys), ensure_ascii=False)}
            )
        writer.close()
        writer = None
        os.replace(tmp, dest)
    except pa.ArrowInvalid as exc:
        if "straddling object straddles" in str(exc):
            raise _RowTooLong() from exc
        raise ConvertError(f"{src.name}: {_arrow_reason(exc, src, spec)}") from exc
    except (UnicodeError, csv.Error, json.JSONDecodeError) as exc:
        raise ConvertError(f"{src.name}: cannot be read as {spec.type.upper()}: {_one_line(exc)}") from exc
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        if raw is not None:
            raw.release()
    progress.done()
    return ConvertResult(rows=progress.rows, columns=columns, seconds=progress.seconds, sha256=sha256)


def _open_writer(
    tmp: Path, src: Path, spec: SourceFile, delivered_schema: pa.Schema
) -> tuple[pq.ParquetWriter, list[str], dict[str, str], dict[bytes, bytes]]:
    """The Parquet writer for the delivered columns: (writer, column names, renames, metadata)."""
    delivered = delivered_schema.names
    renames = loose_renames(delivered, [c.source for c in spec.columns])
    for old, new in renames.items():
        log.warning("%s: header %r taken as the configured column %r", src.name, old, new)
    metadata = {HEADER_METADATA: json.dumps(delivered, ensure_ascii=False).encode()}
    if ROW_NUMBER_COLUMN in delivered:
        metadata[ROW_NUMBER_METADATA] = ROW_NUMBER_COLUMN.encode()
    columns = [renames.get(n, n) for n in delivered]
    schema = pa.schema(
        [f.with_name(n) for f, n in zip(delivered_schema, columns, strict=True)], metadata=metadata
    )
    # No column statistics: every value is text and every reader of this file (validation,
    # the text fallback of the bronze load, reprocessing) reads it whole, so min/max of
    # text would cost about a third of the writing for nothing.
    writer = pq.ParquetWriter(tmp, schema, compression="snappy", write_statistics=False)
    return writer, columns, renames, metadata


def _row_groups(batches: Generator[pa.RecordBatch], rows: int) -> Generator[list[pa.RecordBatch]]:
    """``batches`` in lists of at least ``rows`` rows (the last may hold fewer).

    A thread of its own reads the next list while the caller writes the one it was
    given: reading and writing overlap, and at most two row groups are in memory. The
    reader's exceptions are raised here, in the caller.
    """
    stop = threading.Event()

    def take() -> list[pa.RecordBatch] | None:
        group: list[pa.RecordBatch] = []
        count = 0
        for batch in batches:
            group.append(batch)
            count += batch.num_rows
            if count >= rows or stop.is_set():
                return group
        return group or None

    with ThreadPoolExecutor(1, thread_name_prefix="convert-read") as pool:
        ahead = pool.submit(take)
        try:
            while (group := ahead.result()) is not None:
                ahead = pool.submit(take)
                yield group
                del group
        finally:  # the caller stopped early (or the reader failed): stop reading, then close
            stop.set()
            concurrent_wait([ahead])
            batches.close()


def _write(writer: pq.ParquetWriter, batches: list[pa.RecordBatch], metadata: dict[bytes, bytes]) -> None:
    table = pa.Table.from_batches(batches).replace_schema_metadata(metadata)
    writer.write_table(table, row_group_size=table.num_rows)


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def loose_renames(delivered: list[str], configured: list[str]) -> dict[str, str]:
    """Delivered header -> configured name, for names that differ only in case or spaces.

    Only an unambiguous match is renamed: the configured name is not delivered as it is,
    and exactly one delivered name (itself not a configured name) matches it.
    """
    present, wanted = set(delivered), set(configured)
    renames = {}
    for name in configured:
        if name in present:
            continue
        matches = [d for d in delivered if d not in wanted and _norm(d) == _norm(name)]
        if len(matches) == 1 and matches[0] not in renames:
            renames[matches[0]] = name
    return renames


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _arrow_reason(exc: pa.ArrowInvalid, src: Path, spec: SourceFile) -> str:
    """One line saying why Arrow could not read the file."""
    text = _one_line(exc)
    # The serial reader names the row too ("Row #2: "): the column is what the operator needs.
    invalid_utf8 = r"CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to string: invalid UTF8"
    bad_text = re.search(invalid_utf8, text)
    if bad_text:
        return (
            f"cannot be read as CSV: not valid UTF-8 text in column {int(bad_text.group(1)) + 1}; "
            f"the config says {spec.reader.encoding}: fix reader.encoding (latin-1?) or deliver UTF-8"
        )
    return f"cannot be read as {spec.type.upper()}: {text}"


# ---------------------------------------------------------------------------- CSV
BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


UTF16_NUL_SHARE = 0.2  # ASCII text in UTF-16 is half NUL bytes; a stray NUL is a few


def text_encoding(src: Path, configured: str) -> str:
    """The encoding to read ``src`` with: a byte order mark decides, else the config.

    A file full of NUL bytes without a byte order mark is UTF-16 nobody announced:
    refused, because read as UTF-8 it would load as garbage. A stray NUL byte in text
    that is otherwise UTF-8 is read as it is: row validation rejects the row holding it.
    """
    with open(src, "rb") as handle:
        head = handle.read(4096)
    for bom, encoding in BOMS:
        if head.startswith(bom):
            if codecs.lookup(encoding).name != codecs.lookup(configured).name:
                log.warning(
                    "%s: byte order mark says %s (config: %s): reading it as %s",
                    src.name,
                    encoding,
                    configured,
                    encoding,
                )
            return encoding
    looks_utf16 = head.count(b"\x00") >= UTF16_NUL_SHARE * len(head)
    if b"\x00" in head and looks_utf16 and not codecs.lookup(configured).name.startswith("utf-16"):
        raise ConvertError(
            f"{src.name}: the file holds NUL bytes: UTF-16 without a byte order mark? "
            "Deliver it with a BOM, or set reader.encoding (utf-16-le or utf-16-be)"
        )
    return configured


def _csv_options(
    spec: SourceFile, encoding: str, block_size: int, column_types=None, on_invalid=None
) -> dict:
    return {
        # One parsing thread: the Parquet writer, which cannot use more than one, keeps the
        # other core (reading and writing overlap, see _row_groups).
        "read_options": pacsv.ReadOptions(encoding=encoding, block_size=block_size, use_threads=False),
        "parse_options": pacsv.ParseOptions(
            delimiter=spec.reader.delimiter,
            newlines_in_values=True,  # quoted line breaks, wherever a read block ends
            invalid_row_handler=on_invalid,
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types=column_types or {},
            strings_can_be_null=True,
            null_values=[""],
        ),
    }


def _csv_batches(src: Path, spec: SourceFile, block_size: int, raw: _RawFile) -> Generator[pa.RecordBatch]:
    """The CSV's batches, read from ``raw`` (the quote check is the caller's, on the way out)."""
    if src.stat().st_size == 0:
        raise ConvertError(f"{src.name}: the file is empty (no header row)")
    encoding = raw.encoding = text_encoding(src, spec.reader.encoding)
    invalid: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        return "error"

    yielded = False
    try:
        # First pass: the header as the CSV parser reads it (quotes, line breaks and all).
        with pacsv.open_csv(src, **_csv_options(spec, encoding, block_size, on_invalid=on_invalid)) as probe:
            header = probe.schema.names
        clean = [header[0].removeprefix("\ufeff"), *header[1:]]
        if len(set(clean)) != len(clean):
            raise ConvertError(f"{src.name}: duplicate column names in the header")
        if ROW_NUMBER_COLUMN in clean:
            raise ConvertError(f"{src.name}: the header has the reserved column name {ROW_NUMBER_COLUMN}")
        _check_delimiter(src, spec, clean)
        options = _csv_options(spec, encoding, block_size, {name: pa.string() for name in header}, on_invalid)
        for batch in pacsv.open_csv(raw, **options):
            yielded = True
            yield batch.rename_columns(clean) if clean != header else batch
    except pa.ArrowInvalid as exc:
        if not invalid:
            raise
        row = invalid[0]
        line = _line_of(src, encoding, row.text)
        where = f"line {line}" if line else "a row"
        raise ConvertError(
            f"{src.name}: {where} has {row.actual_columns} fields, the header has {row.expected_columns}: "
            f"{row.text[:120]!r}"
        ) from exc
    if not yielded:  # header only: an empty Parquet with the header's columns
        yield pa.RecordBatch.from_arrays([pa.nulls(0, pa.string()) for _ in clean], names=clean)


def _check_delimiter(src: Path, spec: SourceFile, header: list[str]) -> None:
    """One header column holding another delimiter: the file uses a different one."""
    if len(header) != 1 or len(spec.columns) < 2:
        return
    found = [d for d in DELIMITERS if d != spec.reader.delimiter and d in header[0]]
    if found:
        raise ConvertError(
            f"{src.name}: the header is one column ({header[0][:80]!r}) but {len(spec.columns)} are "
            f"configured: the file looks {found[0]!r}-delimited, the config says {spec.reader.delimiter!r}"
        )


def _check_quotes(src: Path, spec: SourceFile, raw: _RawFile) -> None:
    """Refuse a file whose last quoted value is never closed.

    The CSV reader would take everything from the opening quote to the end of the file
    as one value, silently swallowing the rows after it. An odd number of quote
    characters is the cheap sign (a quote inside an unquoted value is literal, so it is
    only a sign); the strict CSV reader then confirms it and finds the line. The count
    is taken on the bytes the CSV reader consumed (``raw``); it is checked once the
    reader is done, or failed, before any other outcome counts: as if checked first.
    """
    encoding = raw.encoding
    if encoding is None or not _ascii_compatible(encoding):
        return  # refused before the file was read (empty, NUL bytes), or not ASCII-based
    raw.finish()
    if raw.quotes % 2 == 0:
        return
    with open(src, encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=spec.reader.delimiter, strict=True)
        start = 1
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise ConvertError(
                    f"{src.name}: unbalanced quotes: the quoted value opened on line {start} is never "
                    "closed, so every row after it would be lost"
                ) from None
            # Any other strictness complaint is not ours to refuse: the CSV reader decides.


def _ascii_compatible(encoding: str) -> bool:
    return codecs.lookup(encoding).name not in ("utf-16", "utf-16-le", "utf-16-be", "utf-32")


def _line_of(src: Path, encoding: str, text: str) -> int | None:
    """The line number of the first line that is exactly ``text`` (error path only)."""
    with open(src, encoding=encoding, errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if line.rstrip("\r\n") == text:
                return number
    return None


def _longest_line(src: Path) -> tuple[int, int]:
    """(line number, length in bytes) of the file's longest line (error path only)."""
    best_line, best, line, current = 1, 0, 1, 0
    with open(src, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            breaks = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            if not len(breaks):
                current += len(chunk)
                continue
            lengths = np.diff(breaks, prepend=-1) - 1  # without the line break
            lengths[0] += current
            i = int(np.argmax(lengths))
            if lengths[i] > best:
                best, best_line = int(lengths[i]), line + i
            line += len(breaks)
            current = len(chunk) - int(breaks[-1]) - 1
    if current > best:
        best, best_line = current, line
    return best_line, best


# ---------------------------------------------------------------------------- XLSX / JSON
def _text(value: object) -> str | None:
    """A cell or JSON value as the text a CSV would have carried."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _chunked(columns: list[str], rows: Iterable[list[object]]) -> Iterator[pa.RecordBatch]:
    schema = pa.schema([(c, pa.string()) for c in columns])
    chunk: list[list[object]] = []
    yielded = False
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield _batch(schema, chunk)
            yielded, chunk = True, []
    if chunk or not yielded:
        yield _batch(schema, chunk)


def _batch(schema: pa.Schema, rows: list[list[object]]) -> pa.RecordBatch:
    width = len(schema)
    arrays = [
        pa.array([_text(r[i]) if i < len(r) else None for r in rows], type=pa.string()) for i in range(width)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _xlsx_batches(src: Path, spec: SourceFile) -> Generator[pa.RecordBatch]:
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(src))
    except Exception as exc:  # calamine raises its own error types
        raise ConvertError(f"{src.name}: cannot be read as XLSX: {_one_line(exc)}") from exc
    sheet_name = spec.reader.sheet or workbook.sheet_names[0]
    if sheet_name not in workbook.sheet_names:
        raise ConvertError(
            f"{src.name}: no sheet named {sheet_name!r} (sheets: {', '.join(workbook.sheet_names)})"
        )
    # iter_rows starts at the sheet's first row, so enumerating gives the sheet row number.
    rows: Iterator[tuple[int, list[Any]]] = enumerate(
        workbook.get_sheet_by_name(sheet_name).iter_rows(), start=1
    )
    for _ in range(spec.reader.header_row - 1):
        next(rows, None)
    header_row, header_cells = next(rows, (spec.reader.header_row, None))
    if not header_cells or all(c in (None, "") for c in header_cells):
        raise ConvertError(f"{src.name}: sheet {sheet_name!r} has no header in row {spec.reader.header_row}")
    while header_cells and header_cells[-1] in (None, ""):
        header_cells = header_cells[:-1]
    header = [str(_text(c) or "") for c in header_cells]
    if len(set(header)) != len(header):
        raise ConvertError(f"{src.name}: duplicate column names in the header of sheet {sheet_name!r}")
    if ROW_NUMBER_COLUMN in header:
        raise ConvertError(f"{src.name}: the header has the reserved column name {ROW_NUMBER_COLUMN}")
    configured = {_norm(c.source) for c in spec.columns}
    if not configured & {_norm(h) for h in header}:
        # Not one configured column: a title block above the header, or the wrong row.
        ahead = [(header_row, header_cells)]
        for number, cells in rows:
            ahead.append((number, cells))
            if len(ahead) > 20:
                break
        found = next(
            (
                n
                for n, cells in ahead
                if len(configured & {_norm(str(_text(c) or "")) for c in cells}) * 2 >= len(configured)
            ),
            None,
        )
        if found is not None:
            raise ConvertError(
                f"{src.name}: row {header_row} of sheet {sheet_name!r} is not the header "
                f"({', '.join(repr(h) for h in header[:3] if h)}); the header is on row {found}: "
                f"set reader.header_row: {found}"
            )
        rows = _prepend(ahead[1:], rows) if len(ahead) > 1 else rows
    yield from _chunked(
        [*header, ROW_NUMBER_COLUMN],
        ([*r, n] for n, r in _with_width(rows, len(header)) if any(c not in (None, "") for c in r)),
    )


def _with_width(rows: Iterable[tuple[int, list[object]]], width: int) -> Iterator[tuple[int, list[object]]]:
    """Rows cut or padded to the header's width, so the row number lands in its own column."""
    for number, cells in rows:
        cells = list(cells[:width])
        if len(cells) < width:
            cells += [None] * (width - len(cells))
        yield number, cells


def _json_batches(src: Path, spec: SourceFile, keys: set[str]) -> Generator[pa.RecordBatch]:
    """JSON records as rows: the configured columns, then any other key of the first record.

    A record may leave a configured key out (NULL); keys that appear only later, and
    are not configured, are ignored with a warning. ``keys`` collects every key some
    record has, so a configured key that no record has is reported missing by the
    mapping check, as a missing CSV header is.
    """
    records = _json_records(src, spec.reader.json_records)
    first = next(records, None)
    if first is None:
        raise ConvertError(f"{src.name}: the JSON holds no records")
    configured = [c.source for c in spec.columns]
    header = configured + [k for k in first if k not in configured]
    seen = set(header)

    def rows() -> Iterator[list[object]]:
        for record in _prepend(first, records):
            keys.update(record)
            extra = [k for k in record if k not in seen]
            if extra:
                log.warning(
                    "%s: keys not configured and not in the first record are ignored: %s", src.name, extra
                )
                seen.update(extra)
            yield [record.get(k) for k in header]

    yield from _chunked(header, rows())


def _json_lines(src: Path, handle) -> Iterator[object]:
    for number, line in enumerate(handle, start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConvertError(f"{src.name}: line {number} is not valid JSON: {exc.msg}") from exc


def _prepend(first, rest: Iterator) -> Iterator:
    """``first`` (one item, or a list of items) then ``rest``."""
    yield from first if isinstance(first, list) else [first]
    yield from rest


def _json_records(src: Path, layout: str) -> Iterator[dict]:
    encoding = text_encoding(src, "utf-8")
    with open(src, encoding="utf-8-sig" if encoding == "utf-8" else encoding) as handle:
        head = handle.read(1)
        while head.isspace():
            head = handle.read(1)
        if layout == "auto":
            layout = "array" if head == "[" else "lines"
        elif layout == "array" and head == "{":
            raise ConvertError(
                f"{src.name}: holds JSON objects one after another (JSON lines), but the config says "
                "a JSON array (reader.json_records: array)"
            )
        elif layout == "lines" and head == "[":
            raise ConvertError(
                f"{src.name}: holds a JSON array, but the config says JSON lines (reader.json_records: lines)"
            )
        handle.seek(0)
        if layout == "array":
            data = json.load(handle)
            if not isinstance(data, list):
                raise ConvertError(f"{src.name}: expected a JSON array of objects")
            records: Iterable = data
        else:
            records = _json_lines(src, handle)
        for number, record in enumerate(records, start=1):
            if not isinstance(record, dict):
                raise ConvertError(f"{src.name}: record {number} is not a JSON object")
            yield record
