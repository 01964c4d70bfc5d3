"""Quality gates on silver and gold: the checks a client's config declares, as SQL.

Pure: builds the queries and judges their results; the gate's operator
(``include.etl.orchestration.operators.QualityCheckOperator``) runs them.

Each check is one query returning one row of numbers; ``verdict`` turns that row into
``None`` (passed) or a one-line failure naming the table, the check and the numbers.
Identifiers come from the validated config and are quoted; the batch id and the client
are bound parameters (``%(batch_id)s``, ``%(client)s``), never formatted into the SQL.

- ``not_null(cols)``: rows with a NULL in any key column (silver: the batch's rows;
  gold: the whole table).
- ``unique(cols)``: key values held by more than one row (same scope); not scanned
  when a unique index on those columns (silver: or with dwh_batch_id) enforces it.
- ``joins <dimension>(col)``: fact rows whose key is set but missing from the dimension
  (the whole table: a batch also links older rows). A NULL key passes: the fact keeps it
  NULL while its dimension member is unknown (late-arriving); a later batch links it.
- ``row_count``: the batch's rows in a silver table against the previous successful
  batch's; fails when they dropped by more than ``max_row_drop``. The first batch passes.
  For a snapshot delivery (silver keeps its changes only) the rows the snapshot delivered
  (``tools.snapshot_delivery``) are compared instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from include.etl.config import ClientConfig


def _q(identifier: str) -> str:
    """A quoted identifier (config identifiers are already ``[a-z_][a-z0-9_]*``)."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class Check:
    """One quality check: its query (one row of numbers) and how to judge that row."""

    kind: str  # not_null / unique / joins / row_count
    layer: str  # silver / gold
    table: str  # schema.table, as messages name it
    label: str  # the check as messages name it, e.g. unique(order_number, product_number)
    sql: str
    max_drop: float = 0.0  # row_count only
    reference: str = ""  # joins only: the dimension's schema.table.column

    def verdict(self, row: tuple, batch_id: str) -> str | None:
        """None if the check passed, else its one-line failure."""
        head = f"{self.table} {self.label}"
        scope = f" of {batch_id}" if self.layer == "silver" else ""
        if self.kind == "not_null":
            bad, total = row[:2]  # row[2]: NOT NULL constraints enforce it (nothing scanned)
            if bad:
                return f"{head}: {bad:,} of {total:,} rows{scope} have a NULL key"
        elif self.kind == "unique":
            keys, rows = row[:2]  # row[2]: a unique index enforces it (nothing scanned)
            if keys:
                return f"{head}: {keys:,} key value(s) held by more than one row ({rows:,} rows){scope}"
        elif self.kind == "joins":
            bad, total = row
            if bad:
                return f"{head}: {bad:,} of {total:,} rows{scope} have a key missing from {self.reference}"
        elif self.kind == "row_count":
            current, previous, previous_batch = row
            if previous and current < previous * (1 - self.max_drop):
                drop = 1 - current / previous
                return (
                    f"{head}: {current:,} rows in {batch_id}, {drop:.0%} fewer than the {previous:,} "
                    f"of {previous_batch} (at most {self.max_drop:.0%} allowed)"
                )
        return None


def _enforced_not_null(table: str, columns: list[str]) -> str:
    """A query of one boolean: do NOT NULL constraints hold every one of ``columns`` of
    ``table`` (a quoted ``schema.table``)?"""
    names = ", ".join(f"'{c}'" for c in columns)
    return (
        "SELECT count(*) = " + str(len(columns)) + " AS yes FROM pg_attribute AS a "
        f"WHERE a.attrelid = '{table}'::regclass AND a.attname IN ({names}) AND a.attnotnull "
        "AND NOT a.attisdropped "
        # PostgreSQL 18 marks a NOT VALID not-null constraint in attnotnull too (its old
        # rows may hold NULLs): only a validated one counts. Before 18 none is listed.
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conrelid = a.attrelid "
        "AND c.contype = 'n' AND NOT c.convalidated AND a.attnum = ANY (c.conkey))"
    )


def _enforced_by_unique_index(table: str, key_sets: list[list[str]]) -> str:
    """A query of one boolean: does a valid, total, plain unique index of ``table`` have
    exactly one of ``key_sets`` as its key columns (in any order)?"""
    arrays = ", ".join("ARRAY[" + ", ".join(f"'{c}'" for c in keys) + "]::text[]" for keys in key_sets)
    return (
        "SELECT EXISTS (SELECT 1 FROM pg_index AS i "
        f"WHERE i.indrelid = '{table}'::regclass AND i.indisunique AND i.indisvalid "
        "AND i.indpred IS NULL AND i.indexprs IS NULL "
        "AND ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        f"WHERE k.n <= i.indnkeyatts ORDER BY 1) IN ({arrays})) AS yes"
    )


def checks_for(cfg: ClientConfig, layer: str) -> list[Check]:
    """The quality checks of one layer of a client, in config order."""
    schemas = {"silver": cfg.silver_schema, "gold": cfg.gold_schema}
    q = cfg.quality
    checks: list[Check] = []
    for key in q.keys:
        key_layer, name = key.table.split(".")
        if key_layer != layer:
            continue
        table = f"{schemas[layer]}.{name}"
        source = f"{_q(schemas[layer])}.{_q(name)}"
        where = " WHERE dwh_batch_id = %(batch_id)s" if layer == "silver" else ""
        cols = ", ".join(key.columns)
        quoted = ", ".join(_q(c) for c in key.columns)
        any_null = " OR ".join(f"{_q(c)} IS NULL" for c in key.columns)
        # Skipped, as a unique index skips the unique check, when NOT NULL constraints on
        # every key column guarantee it: PostgreSQL refuses the NULL on every write, and
        # the scan of a gold table (the whole fact table, every day) grows with history.
        checks.append(
            Check(
                "not_null",
                layer,
                table,
                f"not_null({cols})",
                f"WITH enforced AS ({_enforced_not_null(source, key.columns)}) "
                f"SELECT count(*) FILTER (WHERE {any_null}), count(*), (SELECT yes FROM enforced) "
                f"FROM {source}{where}{' AND' if where else ' WHERE'} NOT (SELECT yes FROM enforced)",
            )
        )
        if key.unique:
            # Skipped when a unique index already guarantees it: PostgreSQL enforces
            # the key on every write, and the scan (a GROUP BY of the whole fact) is the
            # gate's most expensive query. A silver batch is scoped, so an index on
            # (dwh_batch_id, key) guarantees it there too.
            key_sets = [sorted(key.columns)]
            if layer == "silver":
                key_sets.append(sorted([*key.columns, "dwh_batch_id"]))
            enforced = _enforced_by_unique_index(source, key_sets)
            checks.append(
                Check(
                    "unique",
                    layer,
                    table,
                    f"unique({cols})",
                    f"WITH enforced AS ({enforced}) "
                    f"SELECT count(*), coalesce(sum(n), 0), (SELECT yes FROM enforced) FROM ("
                    f"SELECT count(*) AS n FROM {source}{where}{' AND' if where else ' WHERE'} "
                    f"NOT (SELECT yes FROM enforced) GROUP BY {quoted} HAVING count(*) > 1) AS duplicated",
                )
            )
    if layer == "gold":
        for join in q.joins:
            fact = join.table.split(".")[1]
            dim_column = join.dimension_column or join.column
            fact_table = f"{_q(cfg.gold_schema)}.{_q(fact)}"
            checks.append(
                Check(
                    "joins",
                    layer,
                    f"{cfg.gold_schema}.{fact}",
                    f"joins {join.dimension}({join.column})",
                    # Two scalar subqueries rather than count(*) FILTER (WHERE NOT EXISTS ...):
                    # inside FILTER the NOT EXISTS is a per-row index probe; as a WHERE
                    # clause it is one hashed anti-join (docs/benchmarks.md has the figures).
                    f"SELECT (SELECT count(*) FROM {fact_table} AS f WHERE f.{_q(join.column)} IS NOT NULL "
                    f"AND NOT EXISTS (SELECT 1 FROM {_q(cfg.gold_schema)}.{_q(join.dimension)} AS d "
                    f"WHERE d.{_q(dim_column)} = f.{_q(join.column)})), "
                    f"(SELECT count(*) FROM {fact_table} AS f WHERE f.{_q(join.column)} IS NOT NULL)",
                    reference=f"{cfg.gold_schema}.{join.dimension}.{dim_column}",
                )
            )
    if layer == "silver":
        snapshots = {s.table for s in cfg.silver if s.delivery == "snapshot"}
        for ref in q.row_counts:
            name = ref.split(".")[1]
            source = f"{_q(cfg.silver_schema)}.{_q(name)}"
            table = f"{cfg.silver_schema}.{name}"
            if name in snapshots:  # silver keeps a snapshot's changes only: its size is what it delivered
                size = (
                    "(SELECT coalesce(max(d.delivered_rows), 0) FROM tools.snapshot_delivery AS d "
                    f"WHERE d.client_schema = %(client)s AND d.table_name = '{table}' AND d.batch_id = {{}})"
                )
            else:
                size = f"(SELECT count(*) FROM {source} WHERE dwh_batch_id = {{}})"
            checks.append(
                Check(
                    "row_count",
                    layer,
                    table,
                    "row_count",
                    "WITH previous AS (SELECT max(batch_id) AS batch_id FROM tools.batch "
                    "WHERE client_schema = %(client)s AND status = 'SUCCESS' AND batch_id < %(batch_id)s) "
                    f"SELECT {size.format('%(batch_id)s')}, "
                    f"{size.format('(SELECT batch_id FROM previous)')}, (SELECT batch_id FROM previous)",
                    max_drop=q.max_row_drop,
                )
            )
    return checks
