"""OpenLineage for the client DAG's tasks, read by the OpenLineage provider's listener.

Nothing is sent unless the provider is installed and a transport is configured
(``[openlineage] transport``, none by default). Then every task of a client run emits
its events, and the datasets connect end to end:

* a file's steps declare their files: ``convert`` reads the raw file and writes the
  Parquet file, ``validate_mapping`` and ``validate_rows`` read the Parquet file,
  ``load_bronze`` reads it and writes the bronze table (with the rows loaded);
* a SQL step is parsed by the provider's SQL parser (its ``%(batch_id)s`` placeholders
  read as literals, which the parser does not know), so bronze -> silver -> gold -> views.

Files are named ``file`` + their path; tables as the provider's SQL parser names them
(``postgres://host:port`` + ``database.schema.table``), so both meet in a lineage
backend (Marquez, DataHub).
"""

from __future__ import annotations

import re
from typing import Any

from include.etl.config import ClientConfig
from include.etl.ingest.landing import parquet_name
from include.etl.orchestration.connections import landing as landing_store

PLACEHOLDER = re.compile(r"%\(\w+\)s")


def parseable(sql: str) -> str:
    """``sql`` with psycopg's named placeholders as literals, for the SQL parser."""
    return PLACEHOLDER.sub("NULL", sql)


def sql_lineage(hook: Any, conn_id: str, sql: str) -> Any:
    """A SQL step's input and output tables from the provider's SQL parser.

    Its ``%(batch_id)s`` placeholders are read as literals (the parser does not know
    psycopg's). No default schema: with one, the parser (openlineage-sql 1.54) loses
    every table a CTE reads, so gold steps lost their silver inputs. Every table of a
    step is schema-qualified, so an unqualified name is a CTE the parser took for a
    table, and left out. No ``information_schema`` enrichment either: it costs two
    queries per task and drops what it does not find.
    """
    from airflow.providers.openlineage.sqlparser import SQLParser

    info = hook.get_openlineage_database_info(hook.get_connection(conn_id))
    parser = SQLParser(dialect="postgres", default_schema=None)
    lineage = parser.generate_openlineage_metadata_from_sql(
        sql=parseable(sql), hook=hook, database_info=info, use_connection=False
    )
    lineage.inputs, lineage.outputs = _tables(lineage.inputs), _tables(lineage.outputs)
    return lineage


def _tables(datasets: list[Any]) -> list[Any]:
    """The datasets named ``database.schema.table`` (a CTE has no schema)."""
    return [d for d in datasets if len(parts := d.name.split(".")) == 3 and parts[1] not in ("", "None")]


def table_dataset(conn_id: str, schema: str, table: str, rows: int | None = None) -> Any:
    """A warehouse table as the SQL parser names it, with its row count if given."""
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=conn_id)
    info = hook.get_openlineage_database_info(hook.get_connection(conn_id))
    namespace, name = f"{info.scheme}://{info.authority}", f"{info.database}.{schema}.{table}"
    if rows is None:
        return Dataset(namespace=namespace, name=name)
    facets: dict[str, Any] = {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=rows)}
    return OutputDataset(namespace=namespace, name=name, outputFacets=facets)


def file_dataset(path: Any, rows: int | None = None) -> Any:
    """A file, named by its path (OpenLineage's ``file`` namespace)."""
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )

    if rows is None:
        return Dataset(namespace="file", name=str(path))
    facets: dict[str, Any] = {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=rows)}
    return OutputDataset(namespace="file", name=str(path), outputFacets=facets)


def parquet_rows(path: Any) -> int | None:
    """A Parquet file's row count, from its footer; None when it cannot be read."""
    try:
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    except Exception:
        return None


def file_step_lineage(
    cfg: ClientConfig, conn_id: str, logical: str, step: str, batch: dict | None, result: Any
) -> Any:
    """The inputs and outputs of a file step that ran for ``batch`` and returned ``result``
    (``convert``: the Parquet name; ``load_bronze``: the rows loaded)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    physical = (batch or {}).get("files", {}).get(logical)
    if not physical:  # skipped (optional, not delivered) or no batch: nothing read
        return OperatorLineage()
    system, spec = cfg.file(logical)
    landing = landing_store()
    parquet = landing.data(cfg.client, system.name, "incoming") / parquet_name(physical)
    if step == "extract":  # the source table is read by the extract; its file is written
        raw = landing.raw(cfg.client, system.name, "incoming") / physical
        return OperatorLineage(outputs=[file_dataset(raw)])
    if step == "convert":
        raw = landing.raw(cfg.client, system.name, "success") / physical
        return OperatorLineage(
            inputs=[file_dataset(raw)], outputs=[file_dataset(parquet, parquet_rows(parquet))]
        )
    if step == "load_bronze":
        rows = result if isinstance(result, int) else None
        bronze = table_dataset(conn_id, cfg.bronze_schema, spec.bronze_table, rows)
        return OperatorLineage(inputs=[file_dataset(parquet)], outputs=[bronze])
    return OperatorLineage(inputs=[file_dataset(parquet)])
