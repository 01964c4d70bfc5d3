"""Load a validated Parquet file into its bronze table with COPY, idempotently.

Delete-by-batch and COPY run in one transaction: a killed load leaves the table as it
was, and a re-run replaces the batch's rows. Rows streamed batch by batch from Parquet,
rejected rows (by source row number) left out, values normalised by the same rules
validation used, written as CSV by Arrow's C++ writer straight into COPY.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from include.config import ClientConfig, SourceFile
from include.progress import Progress
from include.validation import check_values
from include.warehouse import ident

log = logging.getLogger(__name__)

CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=64 * 1024)


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
    """Replace the batch's rows of ``spec.bronze_table`` with the file's good rows."""
    table = ident(cfg.bronze_schema, spec.bronze_table)
    columns = [c.name for c in spec.columns] + ["dwh_batch_id", "dwh_source_file", "dwh_row_number"]
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        table, sql.SQL(", ").join(ident(c) for c in columns)
    )
    skip = np.fromiter(rejected_rows or (), dtype=np.int64)
    progress = Progress(log, f"load {cfg.bronze_schema}.{spec.bronze_table}")
    offset = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("DELETE FROM {} WHERE dwh_batch_id = %s").format(table), (batch_id,))
        deleted = cur.rowcount
        with cur.copy(copy_sql) as copy:
            for batch in pq.ParquetFile(parquet).iter_batches(batch_size=batch_rows):
                n = batch.num_rows
                numbers = np.arange(offset + 1, offset + n + 1, dtype=np.int64)
                offset += n
                arrays = [check_values(batch.column(c.source), c)[1] for c in spec.columns]
                arrays += [
                    pa.array(np.full(n, batch_id, dtype=object), pa.string()),
                    pa.array(np.full(n, source_file, dtype=object), pa.string()),
                    pa.array(numbers),
                ]
                out = pa.Table.from_arrays(arrays, names=columns)
                if len(skip):
                    out = out.filter(pa.array(~np.isin(numbers, skip)))
                buffer = io.BytesIO()
                pacsv.write_csv(out, buffer, CSV_OPTIONS)
                copy.write(buffer.getbuffer())
                progress.add(out.num_rows)
    if deleted:
        log.info("replaced %s earlier rows of batch %s", f"{deleted:,}", batch_id)
    progress.done()
    return progress.rows
