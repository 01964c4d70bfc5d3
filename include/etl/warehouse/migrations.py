"""The warehouse's shape: versioned migrations, the bronze tables, the config in ``tools``.

``migrate`` applies the pending migrations (``sql/tools`` first, then each client's:
its template's rendered with its names, then its own),
creates or widens the bronze tables from the config, and mirrors the config into the
``tools`` tables (client reference, file config, column mapping, SQL steps, schema
registry). Everything here takes an open psycopg connection, so it runs the same from a
task, a test or a script. Identifiers from config are quoted with
``psycopg.sql.Identifier``; values are always bound parameters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from include.etl.config import PG_TYPES, SQL_DIR, ClientConfig
from include.etl.templates import render_text
from include.etl.warehouse.connection import one_row

log = logging.getLogger(__name__)

MIGRATION_FILE = re.compile(r"^V(\d{3,})__([a-z0-9_]+)\.sql$")
BRONZE_LINEAGE_COLUMNS = (
    "dwh_batch_id text NOT NULL",
    "dwh_source_file text NOT NULL",
    "dwh_row_number bigint NOT NULL",
    "dwh_loaded_at timestamptz NOT NULL DEFAULT now()",
)


def ident(*parts: str) -> sql.Composable:
    """A quoted, dot-joined identifier: ident('bronze_client1', 'crm_cust_info')."""
    return sql.Identifier(*parts)


# ------------------------------------------------------------------------ migrations
class MigrationError(RuntimeError):
    """A migration failed or was edited after it was applied; the message names the file."""


@dataclass(frozen=True)
class Migration:
    """One migration file: ``V001__what_it_does.sql`` of a scope (``tools`` or a client),
    with its text as it runs (a client's file rendered with the client's names)."""

    scope: str  # "tools", the client name, or "<client>:own"
    version: int
    name: str
    path: Path
    text: str

    @property
    def checksum(self) -> str:
        """The text's hash, recorded when applied (an applied migration must not change)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def discover_migrations(scope: str, folder: Path, names: dict[str, str] | None = None) -> list[Migration]:
    """The migration files of a folder, in version order; a misnamed file is an error.

    ``names``: render each file with them (a client's migrations, see include.etl.templates).
    """
    found = []
    for path in sorted(folder.glob("V*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named V001__what_it_does.sql")
        text = path.read_text(encoding="utf-8")
        if names is not None:
            text = render_text(text, names)
        found.append(Migration(scope, int(match.group(1)), match.group(2), path, text))
    return found


def migrate(conn: psycopg.Connection, configs: list[ClientConfig]) -> list[str]:
    """Apply pending migrations (tools, then each client's), then sync each client.

    Serialised by an advisory lock, so concurrent runs of several clients are safe.
    Returns the names of the migrations applied now.
    """
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('medallion-etl:migrations'))")
        conn.execute("CREATE SCHEMA IF NOT EXISTS tools")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS tools.schema_migrations (
                   scope text NOT NULL, version integer NOT NULL, name text NOT NULL,
                   checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (scope, version))"""
        )
        done = {
            (scope, version): checksum
            for scope, version, checksum in conn.execute(
                "SELECT scope, version, checksum FROM tools.schema_migrations"
            )
        }
        pending = discover_migrations("tools", SQL_DIR / "tools")
        for cfg in configs:
            for scope, folder in cfg.migration_folders():
                pending += discover_migrations(scope, folder, cfg.template_names)
        for m in pending:
            key = (m.scope, m.version)
            if key in done:
                if done[key] != m.checksum:
                    raise MigrationError(
                        f"{m.scope}/{m.path.name} changed after it was applied; "
                        "put the change in a new migration file instead"
                    )
                continue
            try:
                conn.execute(m.text)
            except psycopg.Error as exc:
                message = " ".join(str(exc).split())
                raise MigrationError(f"{m.scope}/{m.path.name} failed: {message}") from exc
            conn.execute(
                "INSERT INTO tools.schema_migrations (scope, version, name, checksum)"
                " VALUES (%s, %s, %s, %s)",
                (m.scope, m.version, m.name, m.checksum),
            )
            applied_now.append(f"{m.scope}/{m.path.name}")
        for cfg in configs:
            sync_client(conn, cfg)
    for name in applied_now:
        log.info("applied migration %s", name)
    return applied_now


# ------------------------------------------------------------------------ bronze + config
def bronze_ddl(cfg: ClientConfig, existing: dict[str, set[str]] | None = None) -> list[sql.Composed]:
    """The statements that make the bronze tables match the config (additive only).

    ``existing`` maps each bronze table that exists to its columns; only what is missing
    is created, so a batch whose config did not change takes no lock on bronze.
    """
    existing = existing or {}
    statements: list[sql.Composed] = []
    if not existing:
        statements.append(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident(cfg.bronze_schema)))
    for _, f in cfg.files:
        table = ident(cfg.bronze_schema, f.bronze_table)
        if f.bronze_table not in existing:
            columns = [
                sql.SQL("{} {}").format(ident(c.name), sql.SQL(PG_TYPES[c.type])) for c in f.columns
            ] + [sql.SQL(c) for c in BRONZE_LINEAGE_COLUMNS]
            statements.append(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(columns)))
            statements.append(
                sql.SQL("CREATE INDEX {} ON {} (dwh_batch_id)").format(
                    ident(f"{f.bronze_table}_batch_idx"), table
                )
            )
            continue
        for c in f.columns:
            if c.name not in existing[f.bronze_table]:
                statements.append(
                    sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                        table, ident(c.name), sql.SQL(PG_TYPES[c.type])
                    )
                )
    return statements


def bronze_columns(conn: psycopg.Connection, cfg: ClientConfig) -> dict[str, set[str]]:
    """The client's bronze tables that exist, with their columns."""
    tables: dict[str, set[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
        (cfg.bronze_schema,),
    ):
        tables.setdefault(table, set()).add(column)
    return tables


def sync_client(conn: psycopg.Connection, cfg: ClientConfig) -> int:
    """Create the client's bronze tables and mirror its config into the tools tables.

    Returns the client's ``client_id``. Runs inside the caller's transaction.
    """
    for statement in bronze_ddl(cfg, bronze_columns(conn, cfg)):
        conn.execute(statement)
    (client_id,) = one_row(
        conn.execute(
            """INSERT INTO tools.client_reference
               (client_schema, display_name, owner, config_file, config_version)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (client_schema) DO UPDATE SET
               display_name = EXCLUDED.display_name, owner = EXCLUDED.owner,
               config_file = EXCLUDED.config_file, config_version = EXCLUDED.config_version,
               updated_at = now()
           RETURNING client_id""",
            (cfg.client, cfg.display_name, cfg.owner, cfg.config_file, cfg.config_version),
        )
    )
    conn.execute("DELETE FROM tools.client_config WHERE client_schema = %s", (cfg.client,))
    conn.execute("DELETE FROM tools.sql_step_config WHERE client_schema = %s", (cfg.client,))
    for system, f in cfg.files:
        conn.execute(
            """INSERT INTO tools.client_config
                   (client_schema, logical_source_file, source_system, source_type,
                    file_pattern, target_schema, target_table, is_required, key_columns,
                    reject_max_rows, reject_max_ratio, reader_options, config_version)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                cfg.client,
                f.name,
                system.name,
                f.type,
                f.pattern,
                cfg.bronze_schema,
                f.bronze_table,
                f.required,
                f.key_columns,
                f.reject_policy.max_rows,
                f.reject_policy.max_ratio,
                json.dumps(f.reader.model_dump()),
                cfg.config_version,
            ),
        )
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO tools.column_mapping
                       (client_schema, logical_source_file, ordinal, source_column,
                        target_column, data_type, is_required)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                [
                    (cfg.client, f.name, i, c.source, c.name, c.type, c.required)
                    for i, c in enumerate(f.columns, start=1)
                ],
            )
    register_schemas(conn, cfg)
    steps = [
        (layer, s.name, s.sql, s.table, s.depends_on)
        for layer in ("silver", "gold")
        for s in getattr(cfg, layer)
    ]
    steps += [("views", v.name, v.sql, v.name, []) for v in cfg.views]
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO tools.sql_step_config
                   (client_schema, layer, step_name, sql_file, target_table, run_order,
                    depends_on, config_version)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (cfg.client, layer, name, path, table, order, deps, cfg.config_version)
                for order, (layer, name, path, table, deps) in enumerate(steps, start=1)
            ],
        )
    return client_id


def file_schema(columns) -> list[dict]:
    """The registered schema of a logical file: its columns, in order."""
    return [{"source": c.source, "target": c.name, "type": c.type, "required": c.required} for c in columns]


def register_schemas(conn: psycopg.Connection, cfg: ClientConfig) -> None:
    """Record each logical file's expected schema in tools.schema_registry.

    A file gets version 1 when first seen and a new version whenever its columns
    (source name, target, type, required) change; an unchanged schema adds nothing.
    """
    for _, f in cfg.files:
        columns = file_schema(f.columns)
        digest = hashlib.sha256(json.dumps(columns, sort_keys=True).encode()).hexdigest()[:16]
        latest = conn.execute(
            """SELECT version, schema_hash FROM tools.schema_registry
               WHERE client_schema = %s AND logical_source_file = %s
               ORDER BY version DESC LIMIT 1""",
            (cfg.client, f.name),
        ).fetchone()
        if latest and latest[1] == digest:
            continue
        version = latest[0] + 1 if latest else 1
        conn.execute(
            """INSERT INTO tools.schema_registry
                   (client_schema, logical_source_file, version, schema_hash, columns, config_version)
               VALUES (%s, %s, %s, %s, %s, %s)""",
            (cfg.client, f.name, version, digest, json.dumps(columns), cfg.config_version),
        )
        log.info("%s/%s: schema version %d registered", cfg.client, f.name, version)
