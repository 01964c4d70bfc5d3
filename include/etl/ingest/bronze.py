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

Validation writes the rows the load will send, once: ``TypedFile`` holds the accepted
rows of a validated file, typed as PostgreSQL will store them
(``include.etl.ingest.validation.pg_values``), with their source row numbers, in an Arrow IPC file
next to the converted one (``landing.typed_name``: ``x_BATCH000001.parquet`` ->
``x_BATCH000001.bronze.arrow``, in the data folder's ``incoming``). The load then only
streams that file into the ADBC PostgreSQL driver's binary ``COPY`` (a file of up to
``SMALL_LOAD_BYTES``, a day's increment, is written as CSV into psycopg's ``COPY``
instead: no driver to load, no second connection); the batch and the
source file, the same on every row, are the child table's column defaults meanwhile. The
file names what it was made from (batch, source file, column config, the converted file,
the rejected rows) and the load uses it only when all of that matches its own arguments.

Without a matching typed file (validated by an older version, a value Arrow cannot type,
a rejected row set changed since), the load types the rows itself as validation would:
streamed batch by batch from the converted Parquet, rejected rows (by source row number)
left out. A value Arrow cannot type exactly as PostgreSQL would (numeric values of mixed
scales in one file, say) makes the load fall back to the text path: the normalised text
written as CSV into psycopg's ``COPY`` (the same transaction rules), which PostgreSQL
parses itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from include.etl.config import ClientConfig, SourceFile
from include.etl.ingest import arrays
from include.etl.ingest.convert import ROW_NUMBER_COLUMN
from include.etl.ingest.landing import partial_path
from include.etl.ingest.progress import Progress
from include.etl.ingest.validation import (
    NotTypable,
    check_values,
    has_row_numbers,
    pg_type,
    pg_values,
    row_numbers,
)

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
    typed: Path | None = None,
    finish: tuple[sql.Composed, ...] = (),
) -> int:
    """Replace the batch's rows of ``spec.bronze_table`` with the file's good rows.

    ``typed``: the ``TypedFile`` validation wrote for ``parquet``, streamed as it is when
    it matches the other arguments (else the rows are typed here). ``conn`` gives the
    database (and credentials); the load itself runs in a connection of its own, in one
    transaction. ``finish``: statements run last in that transaction (a database source's
    mark moves with the rows it stands for).
    """
    progress = Progress(log, f"load {cfg.bronze_schema}.{spec.bronze_table}")
    mismatch = typed_file_mismatch(typed, spec, parquet, batch_id, source_file, rejected_rows or ())
    if mismatch is not None and typed is not None:
        log.info("typing the rows here: %s", mismatch)
    skip = np.fromiter(rejected_rows or (), dtype=np.int64)
    try:
        if mismatch is None and typed is not None:
            replaced = _load_typed_file(
                conn, cfg, spec, typed, batch_id, source_file, batch_rows, progress, finish
            )
        else:
            replaced = _load_binary(
                conn, cfg, spec, parquet, batch_id, source_file, skip, batch_rows, progress, finish
            )
    except NotTypable as exc:
        log.warning("binary COPY not possible (%s): loading as text", exc)
        progress = Progress(log, f"load {cfg.bronze_schema}.{spec.bronze_table} (text)")
        replaced = _load_text(
            conn, cfg, spec, parquet, batch_id, source_file, skip, batch_rows, progress, finish
        )
    if replaced:
        log.info("replaced an earlier load of batch %s (%s)", batch_id, replaced)
    progress.done()
    return progress.rows


# ---------------------------------------------------------------------------- typed file
TYPED_METADATA = "medallion.bronze_rows"
TYPED_FORMAT = 1
# Uncompressed: lz4 made the file smaller but cost validation more time than writing the
# bytes (docs/benchmarks.md); the file lives from validation to the load only.
TYPED_OPTIONS = pa.ipc.IpcWriteOptions()
# A typed file up to this size goes through psycopg's COPY as CSV text on the task's own
# connection: loading the ADBC driver and opening its connection cost most of the load
# of a day's increment (docs/benchmarks.md).
SMALL_LOAD_BYTES = 8 * 1024 * 1024


def _identity(
    spec: SourceFile, parquet: Path, batch_id: str, source_file: str, rejected: Iterable[int]
) -> dict:
    """What a typed file is made from; a load streams it only if its own match."""
    columns = json.dumps([c.model_dump(mode="json") for c in spec.columns], sort_keys=True)
    numbers = np.unique(np.fromiter(rejected, dtype=np.int64))
    return {
        "format": TYPED_FORMAT,
        "batch_id": batch_id,
        "source_file": source_file,
        "columns": hashlib.sha256(columns.encode()).hexdigest(),
        "converted": {
            "name": parquet.name,
            "rows": pq.ParquetFile(parquet).metadata.num_rows,
            "bytes": parquet.stat().st_size,
        },
        "rejected": hashlib.sha256(numbers.tobytes()).hexdigest(),
    }


def typed_file_mismatch(
    typed: Path | None,
    spec: SourceFile,
    parquet: Path,
    batch_id: str,
    source_file: str,
    rejected: Iterable[int],
) -> str | None:
    """Why ``typed`` cannot be streamed as the load of these arguments; None if it can."""
    if typed is None:
        return "no typed file given"
    if not typed.is_file():
        return f"no typed file {typed.name}"
    try:
        with pa.memory_map(str(typed)) as source:
            reader = pa.ipc.open_file(source)
            _, trailer = reader.get_batch_with_custom_metadata(reader.num_record_batches - 1)
        written = json.loads((trailer or {}).get(TYPED_METADATA, b"null"))
    except (OSError, pa.ArrowException, ValueError, IndexError) as exc:
        return f"{typed.name} unreadable: {' '.join(str(exc).split())[:200]}"
    if not isinstance(written, dict):
        return f"{typed.name} is not a typed file"
    expected = _identity(spec, parquet, batch_id, source_file, rejected)
    differ = sorted(k for k in expected if written.get(k) != expected[k])
    return f"{typed.name} was written for another {', '.join(differ)}" if differ else None


class TypedFile:
    """The accepted rows of a file being validated, typed for the load (the ones
    ``validation.validate_rows`` sends, see ``TypedSink``), in an Arrow IPC file at ``path``.

    The file holds the columns as the load sends them and ``dwh_row_number``; the other
    lineage columns (batch, source file) are the load's to fill. Its last record batch has no
    rows and carries what the file was made from (``_identity``) as its metadata.
    Arrow IPC, uncompressed, rather than Parquet: written and read back (memory-mapped)
    at memory speed, for about 1.6x the size of the delivered CSV while it exists.

    Any earlier file at ``path`` is removed first: a validation that fails or is killed
    leaves none. The rows go to a hidden partial file, renamed to ``path`` by
    ``commit`` once validation has stored the rejected rows the file leaves out.
    """

    def __init__(self, path: Path, spec: SourceFile, parquet: Path, batch_id: str, source_file: str) -> None:
        self.path, self.spec, self.parquet = path, spec, parquet
        self.batch_id, self.source_file = batch_id, source_file
        self.partial = partial_path(path)
        self.failed: str | None = None
        self.rows = 0
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.discard()

    def write(self, columns: list[pa.Array], types: list[pa.DataType], numbers: np.ndarray) -> None:
        if self._writer is None:
            self.schema = _typed_schema(self.spec, types)
            self._writer = pa.ipc.new_file(str(self.partial), self.schema, options=TYPED_OPTIONS)
        batch = pa.RecordBatch.from_arrays([*columns, arrays.int64s(numbers)], schema=self.schema)
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def fail(self, reason: str) -> None:
        """The rows cannot all be typed: no typed file, the load types them itself."""
        log.info("no typed rows for the load (%s): it will type them itself", reason)
        self.failed = reason
        self.discard()

    def commit(self, rejected: Iterable[int]) -> bool:
        """Make the file the load's, for these rejected (left out) rows; False if none."""
        if self.failed is not None or self._writer is None:
            self.discard()
            return False
        identity = _identity(self.spec, self.parquet, self.batch_id, self.source_file, rejected)
        trailer = {TYPED_METADATA: json.dumps({**identity, "rows": self.rows})}
        self._writer.write_batch(_empty_batch(self.schema), custom_metadata=trailer)
        self._writer.close()
        self._writer = None
        os.replace(self.partial, self.path)
        return True

    def discard(self) -> None:
        """Leave no typed file (nor a partial one) at ``path``."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for path in (self.path, self.partial):
            path.unlink(missing_ok=True)


def _typed_schema(spec: SourceFile, types: list[pa.DataType]) -> pa.Schema:
    return pa.schema(
        [(c.name, t) for c, t in zip(spec.columns, types, strict=True)] + [(LINEAGE[2], pa.int64())]
    )


def _load_typed_file(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    spec: SourceFile,
    typed: Path,
    batch_id: str,
    source_file: str,
    batch_rows: int,
    progress: Progress,
    finish: tuple[sql.Composed, ...] = (),
) -> str | None:
    """COPY the typed file's rows into the batch's new child table. The batch and the
    source file, the same on every row, are the child's column defaults while the rows
    are copied (dropped again before the commit), not two more columns to encode and send."""
    child = sql.Identifier(cfg.bronze_schema, batch_table(spec.bronze_table, batch_id))
    constant = {LINEAGE[0]: batch_id, LINEAGE[1]: source_file}
    set_defaults = sql.SQL("ALTER TABLE {} {}").format(
        child,
        sql.SQL(", ").join(
            sql.SQL("ALTER COLUMN {} SET DEFAULT {}").format(sql.Identifier(c), sql.Literal(v))
            for c, v in constant.items()
        ),
    )
    drop_defaults = sql.SQL("ALTER TABLE {} {}").format(
        child,
        sql.SQL(", ").join(
            sql.SQL("ALTER COLUMN {} DROP DEFAULT").format(sql.Identifier(c)) for c in constant
        ),
    )
    # Read batch by batch, not memory-mapped: a mapped file's pages count as the
    # process's memory, which then grows with the file (docs/benchmarks.md).
    with pa.OSFile(str(typed)) as source:
        file = pa.ipc.open_file(source)

        def batches() -> Iterator[pa.RecordBatch]:
            for i in range(file.num_record_batches):
                written = file.get_batch(i)
                for start in range(0, written.num_rows, batch_rows):
                    batch = written.slice(start, batch_rows)
                    yield batch
                    progress.add(batch.num_rows)

        if typed.stat().st_size <= SMALL_LOAD_BYTES:  # a day's increment: no driver to load
            log.info("%s: a small file, copied as CSV text", typed.name)
            around = ([set_defaults], [drop_defaults, *finish])
            return _copy_csv(conn, cfg, spec, batch_id, file.schema.names, batches(), *around)
        reader = pa.RecordBatchReader.from_batches(file.schema, batches())
        return _ingest(
            conn, cfg, spec, batch_id, reader, before=[set_defaults], after=[drop_defaults, *finish]
        )


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
                batch, numbers = batch.filter(arrays.bools(keep)), numbers[keep]
        yield batch, numbers


def _replace_batch_sql(cfg: ClientConfig, spec: SourceFile, batch_id: str) -> list[sql.Composed]:
    """Drop the batch's rows (its child table, and any rows in the bronze table itself),
    then create an empty child for it."""
    parent = sql.Identifier(cfg.bronze_schema, spec.bronze_table)
    child = sql.Identifier(cfg.bronze_schema, batch_table(spec.bronze_table, batch_id))
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
    parent = sql.Identifier(cfg.bronze_schema, spec.bronze_table)
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
    finish: tuple[sql.Composed, ...] = (),
) -> str | None:
    stream = _TypedStream(parquet, spec, batch_id, source_file, skip, batch_rows, progress)
    reader = pa.RecordBatchReader.from_batches(stream.schema, stream.batches())
    return _ingest(conn, cfg, spec, batch_id, reader, stream, after=finish)


def _ingest(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    spec: SourceFile,
    batch_id: str,
    reader: pa.RecordBatchReader,
    stream: _TypedStream | None = None,
    before: tuple[sql.Composed, ...] | list[sql.Composed] = (),
    after: tuple[sql.Composed, ...] | list[sql.Composed] = (),
) -> str | None:
    """In one transaction: drop the batch's rows, create its child table, run ``before``,
    COPY the reader's rows in, run ``after``. Returns what was replaced (None: nothing).

    The driver manager's own objects, not its DB-API module: that module imports
    ``pyarrow.dataset`` (which imports pandas) and polars, in every load's process."""
    import adbc_driver_manager as adbc
    import adbc_driver_postgresql

    child = batch_table(spec.bronze_table, batch_id)
    database = adbc_driver_postgresql.connect(_conninfo(conn))
    connection = adbc.AdbcConnection(database)
    statements: list[adbc.AdbcStatement] = []

    def statement() -> adbc.AdbcStatement:
        statements.append(adbc.AdbcStatement(connection))
        return statements[-1]

    def run(query: sql.Composed) -> None:
        stmt = statement()
        stmt.set_sql_query(query.as_string(conn))
        stmt.execute_update()

    try:
        connection.set_autocommit(False)
        try:
            stmt = statement()
            stmt.set_sql_query(_earlier_load_sql(cfg, spec, batch_id).as_string(conn))
            result, _ = stmt.execute_query()
            replaced = pa.RecordBatchReader._import_from_c(result.address).read_all().column(0)[0].as_py()
            for query in [*_replace_batch_sql(cfg, spec, batch_id), *before]:
                run(query)
            ingest = statement()
            ingest.set_options(
                **{
                    adbc.INGEST_OPTION_TARGET_TABLE: child,
                    adbc.INGEST_OPTION_MODE: adbc.INGEST_OPTION_MODE_APPEND,
                    adbc.StatementOptions.INGEST_TARGET_DB_SCHEMA.value: cfg.bronze_schema,
                }
            )
            rows = adbc.ArrowArrayStreamHandle()
            reader._export_to_c(rows.address)
            ingest.bind_stream(rows)
            ingest.execute_update()
            for query in after:
                run(query)
            connection.commit()
        except Exception as exc:
            connection.rollback()
            if stream is not None and stream.not_typable is not None:  # the driver reports it as its own
                raise stream.not_typable from exc
            if not getattr(exc, "sqlstate", None):  # refused by the driver, not the server
                raise NotTypable(" ".join(str(exc).split())[:300]) from exc
            raise _as_psycopg_error(exc) from exc
    finally:
        for stmt in reversed(statements):
            stmt.close()
        connection.close()
        database.close()
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
                columns = [
                    pg_values(batch.column(c.source), c, t)
                    for c, t in zip(self.spec.columns, self.types, strict=True)
                ]
            except NotTypable as exc:
                self.not_typable = exc
                raise
            columns += _lineage(self.batch_id, self.source_file, numbers)
            yield pa.RecordBatch.from_arrays(columns, schema=self.schema)
            self.progress.add(n)


def _lineage(batch_id: str, source_file: str, numbers: np.ndarray) -> list[pa.Array]:
    """The ``LINEAGE`` columns of a batch of rows with these source row numbers."""
    n = len(numbers)
    constant = [pa.repeat(arrays.string(value), n) for value in (batch_id, source_file)]
    return [*constant, arrays.int64s(numbers)]


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


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
    finish: tuple[sql.Composed, ...] = (),
) -> str | None:
    columns = [c.name for c in spec.columns] + LINEAGE

    def tables() -> Iterator[pa.Table]:
        for batch, numbers in _good_batches(parquet, spec, skip, batch_rows):
            n = batch.num_rows
            values = [check_values(batch.column(c.source), c)[1] for c in spec.columns]
            values += _lineage(batch_id, source_file, numbers)
            yield pa.Table.from_arrays(values, names=columns)
            progress.add(n)

    return _copy_csv(conn, cfg, spec, batch_id, columns, tables(), after=finish)


def _copy_csv(
    conn: psycopg.Connection,
    cfg: ClientConfig,
    spec: SourceFile,
    batch_id: str,
    columns: list[str],
    tables: Iterator[pa.Table | pa.RecordBatch],
    before: tuple[sql.Composed, ...] | list[sql.Composed] = (),
    after: tuple[sql.Composed, ...] | list[sql.Composed] = (),
) -> str | None:
    """``_ingest`` through psycopg: the rows written as CSV into ``COPY`` (PostgreSQL
    parses the text), on ``conn``, in one transaction."""
    child = sql.Identifier(cfg.bronze_schema, batch_table(spec.bronze_table, batch_id))
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        child, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with conn.transaction(), conn.cursor() as cur:
        (replaced,) = cur.execute(_earlier_load_sql(cfg, spec, batch_id)).fetchone() or (None,)
        for statement in [*_replace_batch_sql(cfg, spec, batch_id), *before]:
            cur.execute(statement)
        with cur.copy(copy_sql) as copy:
            for table in tables:
                buffer = io.BytesIO()
                pacsv.write_csv(table, buffer, CSV_OPTIONS)
                copy.write(buffer.getbuffer())
        for statement in after:
            cur.execute(statement)
    return replaced
