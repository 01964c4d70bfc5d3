"""Load a validated Parquet file into its bronze table, idempotently, at COPY speed.

Each batch's rows of a bronze table live in a table of their own, a child of the bronze
table (``crm_sales_details`` -> ``crm_sales_details__batch000001``, ``INHERITS`` with a
``CHECK (dwh_batch_id = ...)`` constraint). Queries on the bronze table see every
batch, and a ``WHERE dwh_batch_id = ...`` reads only that batch's child (constraint
exclusion). A load drops the batch's child, creates it again and streams the rows into
it with binary ``COPY``, all in one transaction: a killed load leaves the table as it
was, a re-run replaces the batch, and replacing a batch costs a ``DROP TABLE`` instead
of a ``DELETE`` of millions of rows. The child needs no index on the batch column, so
the load writes each row once. Rows of the batch that an older version of this module
wrote into the bronze table itself are deleted in the same transaction.

Rows are streamed batch by batch from Parquet, rejected rows (by source row number) left
out, values normalised by the same rules validation used and typed in Arrow
(``include.validation.pg_values``), then written by the ADBC PostgreSQL driver as binary
``COPY``. A value Arrow cannot type exactly as PostgreSQL would (numeric values of mixed
scales in one file, say) makes the load fall back to the text path: the normalised text
written as CSV into psycopg's ``COPY`` (the same transaction rules), which PostgreSQL
parses itself.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from include.config import ClientConfig, SourceFile
from include.convert import ROW_NUMBER_COLUMN
from include.progress import Progress
from include.validation import NotTypable, check_values, has_row_numbers, pg_type, pg_values, row_numbers
from include.warehouse import ident

log = logging.getLogger(__name__)

CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=64 * 1024)
LINEAGE = ["dwh_batch_id", "dwh_source_file", "dwh_row_number"]
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1


def batch_table(table: str, batch_id: str) -> str:
    """The name of the child table that holds one batch's rows of a bronze table."""
    name = f"{table}__{batch_id.lower()}"
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    keep = MAX_IDENTIFIER - len(batch_id) - len(digest) - 3
    return f"{table[:keep]}_{digest}__{batch_id.lower()}"


def load_bronze(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    spec: SourceFile,
    parquet: Path,
    batch_id: str,
    source_file: str,
    rejected_rows: set[int] | None = None,
    batch_rows: int = 128 * 1024,
) -> int:
    """Replace the batch's rows of ``spec.bronze_table`` with the file's good rows.

    ``conn`` gives the database (and credentials); the load itself runs in a
    connection of its own, in one transaction.
    """
    skip = np.fromiter(rejected_rows or (), dtype=np.int64)
    progress = Progress(log, f"load {cfg.bronze_schema}.{spec.bronze_table}")
    try:
        replaced = _load_binary(conn, cfg, spec, parquet, batch_id, source_file, skip, batch_rows, progress)
    except NotTypable as exc:
        log.warning("binary COPY not possible (%s): loading as text", exc)
        progress = Progress(log, f"load {cfg.bronze_schema}.{spec.bronze_table} (text)")
        replaced = _load_text(conn, cfg, spec, parquet, batch_id, source_file, skip, batch_rows, progress)
    if replaced:
        log.info("replaced an earlier load of batch %s (%s)", batch_id, replaced)
    progress.done()
    return progress.rows


# ---------------------------------------------------------------------------- shared
def _good_batches(
    parquet: Path, spec: SourceFile, skip: np.ndarray, batch_rows: int
) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    """(rows not rejected, their source row numbers), batch by batch."""
    offset = 0
    sources = [c.source for c in spec.columns]
    file = pq.ParquetFile(parquet)
    numbered = has_row_numbers(file.schema_arrow)
    columns = [*sources, ROW_NUMBER_COLUMN] if numbered else sources
    for batch in file.iter_batches(batch_size=batch_rows, columns=columns):
        n = batch.num_rows
        numbers = row_numbers(batch, offset + 1, numbered)
        offset += n
        if len(skip):
            keep = ~np.isin(numbers, skip)
            if not keep.all():
                batch, numbers = batch.filter(pa.array(keep)), numbers[keep]
        yield batch, numbers


def _replace_batch_sql(cfg: ClientConfig, spec: SourceFile, batch_id: str) -> list[sql.Composed]:
    """Drop the batch's rows (its child table, and any rows in the bronze table itself),
    then create an empty child for it."""
    parent = ident(cfg.bronze_schema, spec.bronze_table)
    child = ident(cfg.bronze_schema, batch_table(spec.bronze_table, batch_id))
    return [
        sql.SQL("DELETE FROM ONLY {} WHERE dwh_batch_id = {}").format(parent, sql.Literal(batch_id)),
        sql.SQL("DROP TABLE IF EXISTS {}").format(child),
        sql.SQL("CREATE TABLE {} (CHECK (dwh_batch_id = {})) INHERITS ({})").format(
            child, sql.Literal(batch_id), parent
        ),
    ]


def _earlier_load_sql(cfg: ClientConfig, spec: SourceFile, batch_id: str) -> sql.Composed:
    """What a load of the batch replaces, for the log (NULL: nothing), without counting
    rows: the batch's table and its row estimate, rows in the bronze table itself."""
    parent = ident(cfg.bronze_schema, spec.bronze_table)
    return sql.SQL(
        """SELECT NULLIF(concat_ws('; ',
               (SELECT 'its table ' || CASE WHEN c.reltuples >= 0
                                            THEN 'of about ' || c.reltuples::bigint || ' rows'
                                            ELSE '(rows not counted yet)' END
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = {schema} AND c.relname = {child}),
               CASE WHEN EXISTS (SELECT 1 FROM ONLY {parent} WHERE dwh_batch_id = {batch})
                    THEN 'rows in the bronze table itself' END), '')"""
    ).format(
        schema=sql.Literal(cfg.bronze_schema),
        child=sql.Literal(batch_table(spec.bronze_table, batch_id)),
        parent=parent,
        batch=sql.Literal(batch_id),
    )


# ---------------------------------------------------------------------------- binary (ADBC)
def _load_binary(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    spec: SourceFile,
    parquet: Path,
    batch_id: str,
    source_file: str,
    skip: np.ndarray,
    batch_rows: int,
    progress: Progress,
) -> str | None:
    import adbc_driver_postgresql.dbapi as adbc

    stream = _TypedStream(parquet, spec, batch_id, source_file, skip, batch_rows, progress)
    reader = pa.RecordBatchReader.from_batches(stream.schema, stream.batches())
    child = batch_table(spec.bronze_table, batch_id)
    with adbc.connect(_conninfo(conn), autocommit=False) as adbc_conn, adbc_conn.cursor() as cur:
        try:
            cur.execute(_earlier_load_sql(cfg, spec, batch_id).as_string(conn))
            (replaced,) = cur.fetchone()
            for statement in _replace_batch_sql(cfg, spec, batch_id):
                cur.execute(statement.as_string(conn))
            cur.adbc_ingest(child, reader, mode="append", db_schema_name=cfg.bronze_schema)
            adbc_conn.commit()
        except Exception as exc:
            adbc_conn.rollback()
            if stream.not_typable is not None:  # the driver reports it as its own error
                raise stream.not_typable from exc
            if not getattr(exc, "sqlstate", None):  # refused by the driver, not the server
                raise NotTypable(" ".join(str(exc).split())[:300]) from exc
            raise _as_psycopg_error(exc) from exc
    return replaced


class _TypedStream:
    """The typed record batches to COPY, and their Arrow schema.

    The schema (numeric precision and scale above all) is decided from the first batch;
    a later value that does not fit it raises ``NotTypable`` (the load falls back to
    text), kept in ``not_typable`` because the driver reports it as an error of its own.
    """

    def __init__(
        self,
        parquet: Path,
        spec: SourceFile,
        batch_id: str,
        source_file: str,
        skip: np.ndarray,
        batch_rows: int,
        progress: Progress,
    ) -> None:
        self.spec, self.batch_id, self.source_file, self.progress = spec, batch_id, source_file, progress
        self.not_typable: NotTypable | None = None
        self._good = _good_batches(parquet, spec, skip, batch_rows)
        self._first = next(self._good, None)
        sample = self._first[0] if self._first else pq.ParquetFile(parquet).schema_arrow.empty_table()
        self.types = [pg_type(c, sample.column(c.source)) for c in spec.columns]
        self.schema = pa.schema(
            [(c.name, t) for c, t in zip(spec.columns, self.types, strict=True)]
            + [(name, pa.int64() if name == "dwh_row_number" else pa.string()) for name in LINEAGE]
        )

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self._first is None:
            return
        for batch, numbers in _prepend(self._first, self._good):
            n = batch.num_rows
            if n == 0:
                continue
            try:
                arrays = [
                    pg_values(batch.column(c.source), c, t)
                    for c, t in zip(self.spec.columns, self.types, strict=True)
                ]
            except NotTypable as exc:
                self.not_typable = exc
                raise
            arrays += [
                pa.repeat(pa.scalar(self.batch_id), n),
                pa.repeat(pa.scalar(self.source_file), n),
                pa.array(numbers),
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=self.schema)
            self.progress.add(n)


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


def _conninfo(conn: psycopg.Connection) -> str:
    """The psycopg connection's parameters (password included) as a libpq string."""
    params = conn.info.get_parameters()
    if conn.info.password:
        params["password"] = conn.info.password
    params["application_name"] = "medallion-etl-load"
    return psycopg.conninfo.make_conninfo("", **params)


def _as_psycopg_error(exc: Exception) -> Exception:
    """A driver error as the psycopg error of the same SQLSTATE (callers catch those)."""
    state = getattr(exc, "sqlstate", None)
    if not state:
        return exc
    try:
        cls = psycopg.errors.lookup(state)
    except KeyError:
        return exc
    return cls(" ".join(str(exc).split()))


# ---------------------------------------------------------------------------- text (fallback)
def _load_text(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    spec: SourceFile,
    parquet: Path,
    batch_id: str,
    source_file: str,
    skip: np.ndarray,
    batch_rows: int,
    progress: Progress,
) -> str | None:
    child = ident(cfg.bronze_schema, batch_table(spec.bronze_table, batch_id))
    columns = [c.name for c in spec.columns] + LINEAGE
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        child, sql.SQL(", ").join(ident(c) for c in columns)
    )
    with conn.transaction(), conn.cursor() as cur:
        (replaced,) = cur.execute(_earlier_load_sql(cfg, spec, batch_id)).fetchone()
        for statement in _replace_batch_sql(cfg, spec, batch_id):
            cur.execute(statement)
        with cur.copy(copy_sql) as copy:
            for batch, numbers in _good_batches(parquet, spec, skip, batch_rows):
                n = batch.num_rows
                arrays = [check_values(batch.column(c.source), c)[1] for c in spec.columns]
                arrays += [
                    pa.repeat(pa.scalar(batch_id), n),
                    pa.repeat(pa.scalar(source_file), n),
                    pa.array(numbers),
                ]
                buffer = io.BytesIO()
                pacsv.write_csv(pa.Table.from_arrays(arrays, names=columns), buffer, CSV_OPTIONS)
                copy.write(buffer.getbuffer())
                progress.add(n)
    return replaced
