"""A database source's window of rows, extracted into a CSV delivery.

A ``type: database`` source is delivered by the DAG itself: its ``extract`` task reads
the rows of one window from the source database and writes them as a CSV file, the
batch's raw file for that source (``<source>_<BATCH>.csv``). From there it is a file
like any other: converted to Parquet, checked against the mapping, validated, loaded
into bronze, archived with the batch. So restart, reprocessing, dead letters, drift and
retention need nothing of their own.

**The window.** The high-water mark of a source is the greatest (watermark, tie-break
key) pair a successful bronze load has taken (``tools.watermarks``). A batch extracts

    (mark - lookback, upper]     on the pair (watermark, tie-break key)

where ``upper`` is the source's greatest watermark when the batch first extracts. With no
lookback the lower bound is the pair itself, so a row whose watermark equals the mark is
taken exactly when its key is past the mark's key: never lost, never taken twice. With a
lookback, every row of the last ``lookback`` is read again (late rows written with an
older watermark are caught); reading a row twice is harmless, since silver keeps a key's
newest version only. A full load has no lower bound, and takes the rows whose watermark
is NULL too, so validation rejects them with their reason (the watermark column is a
required column); an incremental window cannot place them and leaves them out. The
window is fixed when the batch first extracts (``tools.extract_window``): clearing the
task re-reads the same window.

**Reading.** One ``REPEATABLE READ READ ONLY`` transaction on the source: the greatest
watermark, the window's last pair and the rows are of one snapshot, and a query file can
write nothing. The rows are streamed with ``COPY (SELECT ...) TO STDOUT`` into the file,
so memory does not grow with the rows.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from include.etl.config import ClientConfig, SourceFile
from include.etl.ingest.landing import partial_path

log = logging.getLogger(__name__)


class ExtractError(RuntimeError):
    """The source cannot be read as configured (a corrupted mark, a missing column)."""


@dataclass(frozen=True)
class Mark:
    """A high-water mark: the greatest (watermark, key) a bronze load has taken."""

    watermark: datetime
    key: str


@dataclass(frozen=True)
class Window:
    """What a batch extracts (see the module docstring); fixed at its first extract."""

    full_load: bool
    lower: datetime | None  # None: no lower bound (a full load, or no mark yet)
    lower_key: str | None  # the mark's key, when the lower bound is the mark itself
    upper: datetime | None  # None: the source had no watermark yet (empty, or all NULL)

    def describe(self) -> str:
        if self.full_load or self.lower is None:
            return f"full load up to {self.upper}"
        after = f"({self.lower}, key {self.lower_key})" if self.lower_key is not None else f"{self.lower}"
        return f"after {after} up to {self.upper}"


@dataclass(frozen=True)
class Extracted:
    """What one extract wrote: rows, the window's last pair, the columns, seconds."""

    rows: int
    last: Mark | None
    columns: list[str]
    seconds: float


def source_relation(cfg: ClientConfig, spec: SourceFile) -> sql.Composable:
    """The relation a database source reads: its table, or its query file as a subquery."""
    db = spec.database
    assert db is not None
    if db.table is not None:
        return sql.Identifier(*db.table.split("."))
    query = cfg.render_sql(db.query or "").strip().rstrip(";")
    return sql.SQL("({})").format(sql.SQL(query))  # the client's own file, rendered


def _value(cursor: psycopg.Cursor) -> Any:
    """The one value of a one-row query."""
    row = cursor.fetchone()
    assert row is not None
    return row[0]


def _begin_snapshot(conn: psycopg.Connection) -> None:
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    conn.execute("SET LOCAL TimeZone = 'UTC'")
    conn.execute("SET LOCAL DateStyle = 'ISO, YMD'")


def plan_window(
    conn: psycopg.Connection, cfg: ClientConfig, spec: SourceFile, mark: Mark | None, full_load: bool
) -> Window:
    """The window a new batch extracts: from the mark (less the lookback) to the source's
    greatest watermark now. A mark past that greatest watermark (a corrupted mark, or
    a clock that went back) is an error naming both."""
    db = spec.database
    assert db is not None
    _begin_snapshot(conn)
    try:
        upper = _value(
            conn.execute(
                sql.SQL("SELECT max({}) FROM {} AS s").format(
                    sql.Identifier(db.watermark), source_relation(cfg, spec)
                )
            )
        )
    finally:
        conn.execute("ROLLBACK")
    if full_load or mark is None:
        return Window(True, None, None, upper)
    if upper is None or _aware(mark.watermark) > _aware(upper):
        raise ExtractError(
            f"{spec.name}: the mark {mark.watermark} (key {mark.key}) is later than the source's greatest "
            f"{db.watermark} ({upper}): a corrupted mark or a clock set back; trigger with full_load "
            "to reload the table"
        )
    if db.lookback_interval:
        return Window(False, mark.watermark - db.lookback_interval, None, upper)
    return Window(False, mark.watermark, mark.key, upper)


def _aware(value: datetime) -> datetime:
    """A naive timestamp (a ``timestamp`` column) as UTC, the extract's session time zone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _condition(spec: SourceFile, window: Window, key_type: str) -> sql.Composable:
    """The window as a WHERE condition, values inlined as literals (COPY takes no
    parameters); the mark's key cast to the key column's own type, so it compares as the
    source sorts it."""
    db = spec.database
    assert db is not None
    wm, key = sql.Identifier(db.watermark), sql.Identifier(db.tiebreak)
    parts: list[sql.Composable] = []
    if window.upper is not None:
        parts.append(sql.SQL("{} <= {}").format(wm, sql.Literal(window.upper)))
    if window.lower is not None and window.lower_key is not None:
        lower_key = sql.SQL("CAST({} AS {})").format(sql.Literal(window.lower_key), sql.SQL(key_type))
        parts.append(sql.SQL("({}, {}) > ({}, {})").format(wm, key, sql.Literal(window.lower), lower_key))
    elif window.lower is not None:
        parts.append(sql.SQL("{} > {}").format(wm, sql.Literal(window.lower)))
    taken = sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")
    if window.lower is None:  # a full load: the rows without a watermark too (to be rejected)
        return sql.SQL("(({}) OR {} IS NULL)").format(taken, wm)
    return taken


TIMESTAMPTZ_OID, TIMESTAMP_OID = 1184, 1114


def _as_delivered(column: str, type_oid: int) -> sql.Composable:
    """A column as the CSV carries it: timestamps as ``YYYY-MM-DD HH:MM:SS`` in UTC (the
    text a ``timestamp`` column of the mapping reads: truncated to the second, written by
    PostgreSQL's own output in the ISO date style, a third faster than ``to_char``),
    everything else as PostgreSQL writes it."""
    name = sql.Identifier(column)
    if type_oid == TIMESTAMPTZ_OID:
        value = sql.SQL("date_trunc('second', s.{} AT TIME ZONE 'UTC')").format(name)
    elif type_oid == TIMESTAMP_OID:
        value = sql.SQL("date_trunc('second', s.{})").format(name)
    else:
        return sql.SQL("s.{}").format(name)
    return sql.SQL("{} AS {}").format(value, name)


def extract(
    conn: psycopg.Connection, cfg: ClientConfig, spec: SourceFile, window: Window, dest: Path
) -> Extracted:
    """Write the window's rows to ``dest`` as CSV with a header (aside, then renamed)."""
    db = spec.database
    assert db is not None
    started = time.monotonic()
    relation = source_relation(cfg, spec)
    wm, key = sql.Identifier(db.watermark), sql.Identifier(db.tiebreak)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(dest)
    _begin_snapshot(conn)
    try:
        cursor = conn.execute(sql.SQL("SELECT * FROM {} AS s WHERE false").format(relation))
        columns = [d.name for d in cursor.description or []]
        missing = [c for c in (db.watermark, db.tiebreak) if c not in columns]
        if missing:
            raise ExtractError(f"{spec.name}: the source has no column {', '.join(missing)}")
        key_oid = next(d.type_code for d in cursor.description or [] if d.name == db.tiebreak)
        key_type = _value(conn.execute("SELECT %s::oid::regtype::text", (key_oid,)))
        where = _condition(spec, window, key_type)
        last = conn.execute(
            sql.SQL(
                "SELECT {wm}, {key}::text FROM {rel} AS s WHERE {where} AND {wm} IS NOT NULL "
                "ORDER BY {wm} DESC, {key} DESC LIMIT 1"
            ).format(wm=wm, key=key, rel=relation, where=where)
        ).fetchone()
        select = sql.SQL(", ").join(_as_delivered(d.name, d.type_code) for d in cursor.description or [])
        query = sql.SQL(
            "COPY (SELECT {select} FROM {rel} AS s WHERE {where} ORDER BY s.{wm}, s.{key}) "
            "TO STDOUT (FORMAT csv, HEADER true)"
        ).format(select=select, rel=relation, where=where, wm=wm, key=key)
        with open(tmp, "wb") as out, conn.cursor() as cur:
            with cur.copy(query) as copy:
                for chunk in copy:
                    out.write(chunk)
            rows = max(cur.rowcount, 0)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        conn.execute("ROLLBACK")
    os.replace(tmp, dest)
    seconds = time.monotonic() - started
    log.info("%s: %s rows extracted (%s) in %.2f s", spec.name, f"{rows:,}", window.describe(), seconds)
    return Extracted(rows, Mark(last[0], last[1]) if last else None, columns, seconds)
