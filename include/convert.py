"""Convert a delivered file (CSV, XLSX, JSON) to Parquet, streaming in bounded memory.

Every value is kept as text, exactly as delivered (empty -> NULL): typing is the job of
validation, so conversion never loses a value. Parquet is snappy-compressed with large
row groups and written to a temporary name first, then renamed: a killed conversion
leaves no half-written Parquet behind.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from include.config import SourceFile
from include.progress import Progress

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 256 * 1024
CSV_BLOCK_BYTES = 512 * 1024  # small blocks: pyarrow's streaming reader reads ahead ~35 blocks
CHUNK_ROWS = 64 * 1024  # rows per batch for the row-by-row readers (XLSX, JSON)


class ConvertError(ValueError):
    """The file cannot be read as configured; the message says why in one line."""


@dataclass(frozen=True)
class ConvertResult:
    rows: int
    columns: list[str]
    seconds: float


def convert_to_parquet(src: Path, dest: Path, spec: SourceFile) -> ConvertResult:
    readers = {"csv": _csv_batches, "xlsx": _xlsx_batches, "json": _json_batches}
    progress = Progress(log, f"convert {src.name}")
    tmp = dest.with_name(f".{dest.name}.tmp")
    dest.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | None = None
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    columns: list[str] = []
    try:
        for batch in readers[spec.type](src, spec):
            if writer is None:
                columns = batch.schema.names
                writer = pq.ParquetWriter(tmp, batch.schema, compression="snappy")
            pending.append(batch)
            pending_rows += batch.num_rows
            progress.add(batch.num_rows)
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=pending_rows)
                pending, pending_rows = [], 0
        if writer is None:
            raise ConvertError(f"{src.name}: the file is empty (no header row)")
        if pending_rows:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=pending_rows)
        writer.close()
        writer = None
        os.replace(tmp, dest)
    except (pa.ArrowInvalid, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise ConvertError(f"{src.name}: cannot be read as {spec.type.upper()}: {_one_line(exc)}") from exc
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    progress.done()
    return ConvertResult(rows=progress.rows, columns=columns, seconds=progress.seconds)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


# ---------------------------------------------------------------------------- CSV
def _csv_options(spec: SourceFile, column_types: dict | None = None) -> dict:
    return {
        "read_options": pacsv.ReadOptions(encoding=spec.reader.encoding, block_size=CSV_BLOCK_BYTES),
        "parse_options": pacsv.ParseOptions(
            delimiter=spec.reader.delimiter,
            newlines_in_values=True,  # quoted line breaks, wherever a read block ends
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types=column_types or {},
            strings_can_be_null=True,
            null_values=[""],
        ),
    }


def _csv_batches(src: Path, spec: SourceFile) -> Iterator[pa.RecordBatch]:
    if src.stat().st_size == 0:
        raise ConvertError(f"{src.name}: the file is empty (no header row)")
    # First pass: the header as the CSV parser reads it (quotes, line breaks and all).
    with pacsv.open_csv(src, **_csv_options(spec)) as probe:
        header = probe.schema.names
    if len(set(header)) != len(header):
        raise ConvertError(f"{src.name}: duplicate column names in the header")
    clean = [header[0].removeprefix("\ufeff"), *header[1:]]
    reader = pacsv.open_csv(src, **_csv_options(spec, {name: pa.string() for name in header}))
    yielded = False
    for batch in reader:
        yielded = True
        yield batch.rename_columns(clean) if clean != header else batch
    if not yielded:  # header only: an empty Parquet with the header's columns
        yield pa.RecordBatch.from_pylist([], schema=pa.schema([(c, pa.string()) for c in clean]))


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


def _xlsx_batches(src: Path, spec: SourceFile) -> Iterator[pa.RecordBatch]:
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
    rows = iter(workbook.get_sheet_by_name(sheet_name).iter_rows())
    for _ in range(spec.reader.header_row - 1):
        next(rows, None)
    header_cells = next(rows, None)
    if not header_cells or all(c in (None, "") for c in header_cells):
        raise ConvertError(f"{src.name}: sheet {sheet_name!r} has no header in row {spec.reader.header_row}")
    while header_cells and header_cells[-1] in (None, ""):
        header_cells = header_cells[:-1]
    header = [str(_text(c) or "") for c in header_cells]
    if len(set(header)) != len(header):
        raise ConvertError(f"{src.name}: duplicate column names in the header of sheet {sheet_name!r}")
    yield from _chunked(header, (r for r in rows if any(c not in (None, "") for c in r)))


def _json_batches(src: Path, spec: SourceFile) -> Iterator[pa.RecordBatch]:
    """JSON records as rows: the configured columns, then any other key of the first record.

    A record may leave a configured key out (NULL); keys that appear only later, and
    are not configured, are ignored with a warning.
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
            extra = [k for k in record if k not in seen]
            if extra:
                log.warning(
                    "%s: keys not configured and not in the first record are ignored: %s", src.name, extra
                )
                seen.update(extra)
            yield [record.get(k) for k in header]

    yield from _chunked(header, rows())


def _prepend(first: dict, rest: Iterator[dict]) -> Iterator[dict]:
    yield first
    yield from rest


def _json_records(src: Path, layout: str) -> Iterator[dict]:
    with open(src, encoding="utf-8-sig") as handle:
        head = handle.read(1)
        while head.isspace():
            head = handle.read(1)
        if layout == "auto":
            layout = "array" if head == "[" else "lines"
        handle.seek(0)
        if layout == "array":
            data = json.load(handle)
            if not isinstance(data, list):
                raise ConvertError(f"{src.name}: expected a JSON array of objects")
            records: Iterable = data
        else:
            records = (json.loads(line) for line in handle if line.strip())
        for number, record in enumerate(records, start=1):
            if not isinstance(record, dict):
                raise ConvertError(f"{src.name}: record {number} is not a JSON object")
            yield record
