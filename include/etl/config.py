"""Client configuration: one YAML file per client, validated by typed models.

A client file lives in ``include/clients/<client>.yaml`` and is merged over
``include/clients/_defaults.yaml``: the client-wide defaults (owner, schedule, retries,
sensor, drift policy, quality limits) live in that one file, and the model below has no
default of its own for them. A clients folder kept elsewhere (``ETL_CLIENTS_DIR``) may
hold a ``_defaults.yaml`` too, merged over the built-in one. Per-entry defaults (a
column is text, a CSV is comma-delimited) are the model's. Loading never touches a
database or the network: it is safe at DAG parse time.

A client of a known shape names a template (``template: retail_crm_erp``): its file is
then merged over ``sql/templates/<template>/template.yaml`` (sources, steps, lineage,
checks), which is merged over the defaults. A client file may override any of those
settings; its ``silver``, ``gold`` and ``views`` entries are matched to the template's
by name (an entry of the same name overrides that step's settings, a new name adds a
step). A templated client is checked against its template's contract at load time: every
step file exists, and every silver and gold target is a table the migrations create,
with a ``dwh_batch_id`` column.

Every error names the file and the entry by name, e.g.
``client1.yaml: sources[crm].files[sales_details].columns[sls_price].type: ...``.
``python -m include.etl.config --schema`` prints the JSON Schema of a client file
(``make schema`` writes ``include/clients/client.schema.json``, which editors use).
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from datetime import date, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from include.etl import templates

PROJECT_DIR = Path(__file__).resolve().parents[2]  # include/etl/config.py -> the project
CLIENTS_DIR = PROJECT_DIR / "include" / "clients"
# Where the SQL files are (tools and per-client migrations and steps): sql/ unless the
# environment's ETL_SQL_DIR says otherwise (read once, when this module is imported).
SQL_DIR = Path(os.environ.get("ETL_SQL_DIR") or PROJECT_DIR / "sql").absolute()
DEFAULTS_FILE = "_defaults.yaml"
TEMPLATE_FILE = "template.yaml"  # a template's settings: sql/templates/<template>/template.yaml
SCHEMA_FILE = "client.schema.json"  # the JSON Schema of a client file (make schema)

WAREHOUSE_CONN_ID = "warehouse"  # the Airflow connection every client writes through
RUN_MODES = ("start", "restart", "reprocessing")

# A SQL identifier we are willing to create from config: lower case, no quoting tricks.
Identifier = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,47}$")]
ColumnType = Literal["text", "integer", "numeric", "date", "timestamp", "boolean"]
# What a file whose columns drifted from its registered schema does: fail, or accept
# added columns (a missing or retyped column always fails the file).
SchemaDrift = Literal["fail", "accept_additive"]

# PostgreSQL type of each config column type, as created in bronze.
PG_TYPES: dict[str, str] = {
    "text": "text",
    "integer": "bigint",
    "numeric": "numeric",
    "date": "date",
    "timestamp": "timestamp",
    "boolean": "boolean",
}


SCHEDULE_PRESETS = {
    "@once",
    "@continuous",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
}

# libyaml's C parser with the safe constructor: the same documents as yaml.safe_load, read
# several times faster (parse time of many clients, docs/benchmarks.md).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Task and group ids the DAG uses itself; a logical file may not take them.
RESERVED_GROUPS = {
    "silver",
    "gold",
    "refresh_views",
    "quality",
    "open_batch",
    "close_batch",
    "wait_for_files",
}


class ConfigError(ValueError):
    """A client config is invalid; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Model):
    """One column of a delivered file: its header, bronze name, type, and whether it is required."""

    source: str = Field(min_length=1, max_length=200)
    target: Identifier | None = None
    type: ColumnType = "text"
    required: bool = False
    format: str | None = None  # strptime format for date/timestamp, default ISO

    @property
    def name(self) -> str:
        """The bronze column name: ``target`` or the source name in lower case."""
        return self.target or self.source.strip().lower()


class RejectPolicy(_Model):
    """How many rejected rows a file may have before the whole file fails."""

    max_rows: int | None = Field(default=None, ge=0)
    max_ratio: float = Field(default=0.05, ge=0, le=1)
    # Dead letters stored per file at most. Bronze leaves out the rows that have one, so
    # a file with more rejected rows than this fails: no bad row is skipped unrecorded.
    # 100,000 lets a file of 2M rows with 5% bad rows load; a garbage file fails on its
    # ratio with at most that many stored.
    keep_dead_letters: int = Field(default=100_000, ge=1)


class Reader(_Model):
    """How a file is read: CSV delimiter and encoding, XLSX sheet and header row, JSON layout."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    sheet: str | None = None  # xlsx: sheet name (default: the first sheet)
    header_row: int = Field(default=1, ge=1)  # xlsx: 1-based row holding the header
    json_records: Literal["array", "lines", "auto"] = "auto"


_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class DatabaseSource(_Model):
    """Where a ``type: database`` source's rows are: a table (or a read-only SELECT in a
    .sql file of the client's), read by the window of a high-water mark on ``watermark``
    (a timestamp column) with ``tiebreak`` (a unique key) ordering rows of equal
    watermarks. See include/etl/ingest/extract.py."""

    conn_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,250}$")  # an Airflow connection
    table: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")
    query: str | None = None  # a .sql file (sql/clients/<client>/ or the template), one SELECT
    watermark: Identifier  # updated_at-like: when the row last changed
    tiebreak: Identifier  # orders rows of one watermark; unique with it
    lookback: str = "0s"  # read again the last ... of the mark: late rows (e.g. 2h)
    # Fail the extract after this many windows in a row with no row (a source that stopped
    # being written); None: an empty window is a warning only.
    max_empty_runs: int | None = Field(default=None, ge=1)
    # Read the whole source again when the last full load is older than this (e.g. 7d):
    # a full load is also when rows deleted at the source (hard deletes) are found, as the
    # keys the whole source no longer holds. None: only the first run and full_load runs.
    full_load_every: str | None = None

    @field_validator("query")
    @classmethod
    def _relative_sql_path(cls, value: str | None) -> str | None:
        return value if value is None else _sql_path(value)

    @field_validator("lookback", "full_load_every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _DURATION.match(value.strip()):
            raise ValueError("a duration such as 0s, 90m, 2h or 1d")
        return value.strip()

    @model_validator(mode="after")
    def _one_relation(self) -> DatabaseSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give either table or query")
        return self

    @property
    def lookback_interval(self) -> timedelta:
        return _interval(self.lookback)

    @property
    def full_load_interval(self) -> timedelta | None:
        return None if self.full_load_every is None else _interval(self.full_load_every)


def _interval(duration: str) -> timedelta:
    match = _DURATION.match(duration)
    assert match is not None
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


class SourceFile(_Model):
    """A logical source file: how deliveries are recognised and read, and its bronze table.

    ``type: database``: the rows of a database table, extracted by the DAG itself into a
    CSV delivery of the batch (``<name>_<BATCH>.csv``); ``database`` says where."""

    name: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")  # logical file name
    pattern: str = ""  # regular expression the whole file name must match (files)
    type: Literal["csv", "xlsx", "json", "database"]
    database: DatabaseSource | None = None  # type database only
    reader: Reader = Reader()
    bronze_table: Identifier
    required: bool = True
    key_columns: list[Identifier] = []
    reject_policy: RejectPolicy = RejectPolicy()
    schema_drift: SchemaDrift | None = None  # None: the client's schema_drift
    # For senders that write a marker when a file is complete: the marker's name, with
    # ``{name}`` the delivered file's (``{name}.done``). The file is claimed only once its
    # marker exists, whatever its age; the marker is removed when the file is claimed.
    ready_marker: str | None = Field(default=None, pattern=r"^[^/\\]*\{name\}[^/\\]*$")
    columns: list[Column] = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _kind_consistent(self) -> SourceFile:
        if self.type == "database":
            if self.database is None:
                raise ValueError(
                    "a database source needs `database` (conn_id, table or query, watermark, ...)"
                )
            if self.pattern or self.ready_marker:
                raise ValueError("a database source has no pattern or ready_marker: the DAG extracts it")
            by_source = {c.source: c for c in self.columns}
            for role, column in (
                ("watermark", self.database.watermark),
                ("tiebreak", self.database.tiebreak),
            ):
                if column not in by_source:
                    raise ValueError(f"database.{role}: {column} is not one of the columns")
            watermark = by_source[self.database.watermark]
            if watermark.type != "timestamp" or not watermark.required:
                raise ValueError(
                    f"database.watermark: column {watermark.source} must be "
                    "`type: timestamp, required: true` (a row without it is rejected with that reason)"
                )
        elif self.database is not None:
            raise ValueError(f"`database` is for type database, not {self.type}")
        elif not self.pattern:
            raise ValueError("pattern: a file source needs the regular expression of its file names")
        return self

    @property
    def is_database(self) -> bool:
        """Extracted from a database by the DAG, not delivered into incoming."""
        return self.type == "database"

    @model_validator(mode="after")
    def _columns_consistent(self) -> SourceFile:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate target column(s): {', '.join(dupes)}")
        for column in names:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,47}", column):
                raise ValueError(f"column '{column}' is not a valid identifier; set 'target'")
            if column.startswith("dwh_"):
                raise ValueError(f"column '{column}': names starting with dwh_ are reserved for lineage")
        unknown = sorted(set(self.key_columns) - set(names))
        if unknown:
            raise ValueError(f"key_columns not among the columns: {', '.join(unknown)}")
        return self

    def matches(self, file_name: str) -> bool:
        """Whether a delivered file name is this logical file (the pattern matches it
        whole); a database source is delivered by no one."""
        return not self.is_database and re.fullmatch(self.pattern, file_name) is not None


class SourceSystem(_Model):
    """A source system (crm, erp, ...): one incoming folder and the logical files it delivers."""

    name: Identifier
    files: list[SourceFile] = Field(min_length=1)


def _sql_path(value: str) -> str:
    if value.startswith("/") or ".." in Path(value).parts or not value.endswith(".sql"):
        raise ValueError("must be a relative path to a .sql file inside the client's folder")
    return value


class BronzeKey(_Model):
    """How a snapshot step's key is computed from a row of its bronze table, for a step
    whose cleaned row of a key depends only on the bronze rows of that key: the bronze
    ``columns`` themselves (as many as the key's), or a ``function`` of the client's
    silver schema over them (an immutable SQL function the step's own SQL calls for the
    key too, so the two cannot disagree). With it, a day's snapshot cleans and compares
    only the keys of the rows that changed (include/etl/warehouse/snapshot.py).

    ``clock``: for a step whose cleaning reads the clock only to compare these bronze date
    columns with ``current_date`` itself, named through the bronze table (``b.bdate >
    current_date``: a birth date in the future), the only way a row cleans differently on
    another day. The keys of the rows whose date lies between the day the base delivery
    was compared and today are then compared too. The step's SQL is checked for it: any
    other use of the clock compares every key (and the step's log says so)."""

    columns: list[Identifier] = Field(min_length=1)
    function: Identifier | None = None
    clock: list[Identifier] = []


class SqlStep(_Model):
    """One SQL file run with the batch id as the bound parameter ``%(batch_id)s``."""

    name: Identifier
    sql: str  # relative to sql/clients/<client>/ or, if not there, to the template
    table: Identifier  # the table the step writes, in its layer's schema
    depends_on: list[Identifier] = []
    # A silver step only. ``increment``: every row the batch delivered is added (files that
    # bring new rows: sales lines). ``snapshot``: the file comes in full every time
    # (customers, products, reference tables): silver keeps only the rows that changed
    # since the batches before, by ``key`` (include/etl/warehouse/snapshot.py).
    delivery: Literal["increment", "snapshot"] = "increment"
    key: list[Identifier] = []  # the table's key columns (snapshot deliveries)
    bronze_key: BronzeKey | None = None  # a snapshot step's key from a bronze row (BronzeKey)

    @field_validator("sql")
    @classmethod
    def _relative_sql_path(cls, value: str) -> str:
        return _sql_path(value)

    @property
    def snapshot_key(self) -> list[str] | None:
        """The key a snapshot delivery compares by; None for an increment."""
        return list(self.key) if self.delivery == "snapshot" else None

    @model_validator(mode="after")
    def _snapshot_has_key(self) -> SqlStep:
        if self.delivery == "snapshot" and not self.key:
            raise ValueError(
                f"step '{self.name}': a snapshot delivery needs its table's key columns (key: [...])"
            )
        if self.bronze_key is not None:
            if self.delivery != "snapshot":
                raise ValueError(f"step '{self.name}': bronze_key is for a snapshot delivery's step")
            if self.bronze_key.function is None and len(self.bronze_key.columns) != len(self.key):
                raise ValueError(
                    f"step '{self.name}': bronze_key.columns must name one bronze column per key column "
                    f"({len(self.key)}), or give the function that computes the key from them"
                )
            if self.bronze_key.function is not None and len(self.key) != 1:
                raise ValueError(
                    f"step '{self.name}': a bronze_key function computes a key of one column, "
                    f"not {len(self.key)}"
                )
        return self


class View(_Model):
    """A reporting relation in the gold schema, refreshed after gold.

    Without ``sql``: a materialized view, refreshed whole (``REFRESH MATERIALIZED VIEW``).
    With ``sql``: a summary table that the file keeps up to date for the batch (the
    batch id bound), recomputing only what the batch touched. Written in the config as
    a plain name or as ``{name: ..., sql: views/<name>.sql}``.
    """

    name: Identifier
    sql: str | None = None  # as a step's sql

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("sql")
    @classmethod
    def _relative_sql_path(cls, value: str | None) -> str | None:
        return value if value is None else _sql_path(value)


class Sensor(_Model):
    """How ``wait_for_files`` waits (defaults: _defaults.yaml)."""

    poke_interval_seconds: int = Field(ge=1)
    timeout_seconds: int = Field(ge=1)
    # A delivered file is claimed only once it has not changed for this long: a sender
    # writing it in place under its final name has finished (0: claim at once).
    settle_seconds: int = Field(ge=0)
    # Deferred to a trigger that looks at the folders in the triggerer (no worker process
    # while waiting); false: reschedule mode, each look a short task on a worker.
    deferrable: bool
    # `schedule`: a run starts at each tick of the schedule and waits for the delivery.
    # `delivery`: a watcher in the triggerer starts a run when a delivery is complete (no
    # run exists while nothing has come); a tick's run only takes a delivery already
    # there, and `timeout_seconds` without one starts a run that fails saying so.
    start: Literal["schedule", "delivery"] = "schedule"


# What a client is alerted about: a batch FAILED, PARTIAL or failed by a quality gate;
# no delivery before the sensor's timeout; the deadline missed; a SUCCESS batch that
# is unhealthy against its history; a source that delivered nothing N runs in a row.
AlertEvent = Literal[
    "failed", "partial", "quality_failed", "no_delivery", "deadline_missed", "unhealthy", "source_empty"
]
ALERT_EVENTS: tuple[str, ...] = get_args(AlertEvent)
Email = Annotated[str, Field(pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+$")]
ConnId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,250}$")]


class AlertRoute(_Model):
    """One place alerts go (e-mail addresses, a Slack webhook or an Apprise connection)
    and the events that go there (all by default)."""

    email: list[Email] = []
    slack: ConnId | None = None  # Airflow connection id of a Slack incoming webhook
    apprise: ConnId | None = None  # Airflow connection id of an Apprise connection
    events: list[AlertEvent] = Field(default_factory=lambda: list(get_args(AlertEvent)))

    @model_validator(mode="after")
    def _one_target(self) -> AlertRoute:
        targets = [bool(self.email), self.slack is not None, self.apprise is not None]
        if sum(targets) != 1:
            raise ValueError("a route has exactly one of email, slack or apprise")
        return self

    @property
    def target(self) -> str:
        """How the route is named in logs: the addresses or the connection id."""
        if self.email:
            return ", ".join(self.email)
        return f"slack:{self.slack}" if self.slack else f"apprise:{self.apprise}"


class Alerts(_Model):
    """Where a client's alerts go. ``emails`` get every event; ``routes`` say which
    events go where. E-mail goes through the SMTP connection ``smtp_conn_id``."""

    emails: list[Email] = []
    routes: list[AlertRoute] = []
    smtp_conn_id: ConnId  # _defaults.yaml

    def routes_for(self, event: str) -> list[AlertRoute]:
        """Every route that takes ``event`` (``emails`` as one route of every event)."""
        routes = [AlertRoute(email=self.emails)] if self.emails else []
        return [r for r in [*routes, *self.routes] if event in r.events]


class Health(_Model):
    """How a closed batch is judged against the client's recent successful batches
    (``include/etl/warehouse/health.py``); defaults in _defaults.yaml."""

    history: int = Field(ge=1)  # the last N successful batches are the baseline
    min_history: int = Field(ge=1)  # fewer than this: not judged
    max_duration_ratio: float = Field(gt=1)  # duration over k x the median
    max_rows_change: float = Field(gt=0)  # loaded rows off the median by more than this ratio
    max_reject_ratio_increase: float = Field(gt=1)  # rejected share over k x the median share
    reject_ratio_floor: float = Field(ge=0, le=1)  # ... and over this share


DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class Deadline(_Model):
    """The day's batch must be SUCCESS within ``within`` (``7h``, ``90m``, ``1h30m``, ``45s``) of the
    run's logical date (the scheduled time) or of when it was queued; an alert otherwise."""

    within: str = Field(pattern=DURATION.pattern, min_length=2)
    of: Literal["logical_date", "queued"] = "logical_date"

    @property
    def interval(self) -> timedelta:
        """``within`` as a timedelta."""
        hours, minutes, seconds = DURATION.match(self.within).groups()  # type: ignore[union-attr]
        return timedelta(hours=int(hours or 0), minutes=int(minutes or 0), seconds=int(seconds or 0))


# A table a quality check reads: ``silver.<table>`` or ``gold.<table>`` of the client.
TableRef = Annotated[str, Field(pattern=r"^(silver|gold)\.[a-z_][a-z0-9_]{0,47}$")]


class KeyCheck(_Model):
    """Key columns that must be non-NULL and, together, unique.

    Silver: among the batch's rows. Gold: in the whole table (gold is the current state).
    """

    table: TableRef
    columns: list[Identifier] = Field(min_length=1)
    unique: bool = True


class JoinCheck(_Model):
    """Every fact row whose key is set finds its dimension row.

    A NULL key is allowed: the fact keeps it NULL while its dimension member is unknown
    (late-arriving), and a later batch links it.
    """

    table: TableRef  # the fact, in gold
    column: Identifier
    dimension: Identifier  # a gold table
    dimension_column: Identifier | None = None  # default: the same name as ``column``


class Quality(_Model):
    """Quality gates run after the views: a failing gate fails the batch."""

    keys: list[KeyCheck] = []
    joins: list[JoinCheck] = []
    row_counts: list[TableRef] = []  # silver tables: the batch's rows vs the previous batch's
    max_row_drop: float = Field(ge=0, lt=1)  # the largest drop allowed, as a ratio (_defaults.yaml)


class Lineage(_Model):
    """How a gold table's row is traced back to its delivery (the console's Lineage page):
    the gold row by ``key``, the silver rows of the gold row's batch with the same key
    (``silver_key``, in the same order), and from their file and row number the bronze
    row of ``bronze`` (a file's bronze table) and the delivered file."""

    gold: Identifier  # a table written by a gold step
    key: list[Identifier] = Field(min_length=1)
    silver: Identifier  # a table written by a silver step
    silver_key: list[Identifier] = Field(min_length=1)
    bronze: Identifier  # a file's bronze table

    @model_validator(mode="after")
    def _keys_pair(self) -> Lineage:
        if len(self.key) != len(self.silver_key):
            raise ValueError(f"key has {len(self.key)} column(s), silver_key {len(self.silver_key)}")
        return self


class ClientConfig(_Model):
    """One client: the file ``<client>.yaml`` merged over ``_defaults.yaml``.

    The fields without a default here (owner, schedule, start_date, tags, retries,
    retry_delay_seconds, sensor, schema_drift, quality.max_row_drop,
    task_timeout_minutes, retention_days, alerts.smtp_conn_id, health) take theirs from
    ``_defaults.yaml``.
    """

    client: Identifier
    template: Identifier | None = None  # sql/templates/<template>/: SQL and settings shared
    display_name: str
    owner: str
    description: str = ""
    schedule: str | None
    start_date: date
    tags: list[str]
    retries: int = Field(ge=0)
    retry_delay_seconds: int = Field(ge=1)
    task_timeout_minutes: int = Field(ge=1)
    # Days a closed batch's files, bronze rows, dead letters and logs are kept (the
    # housekeeping DAG purges them after; include/etl/retention.py says what is kept).
    retention_days: int = Field(ge=1)
    alerts: Alerts
    health: Health
    deadline: Deadline | None = None
    sensor: Sensor
    sources: list[SourceSystem] = Field(min_length=1)
    silver: list[SqlStep] = []
    gold: list[SqlStep] = []
    views: list[View] = []  # in the gold schema, refreshed in order after gold
    lineage: list[Lineage] = []  # gold rows traced back to their file and row (the console)
    schema_drift: SchemaDrift  # a file's own schema_drift wins
    quality: Quality

    # Filled by the loader, not by the file.
    config_file: SkipJsonSchema[str] = ""
    config_version: SkipJsonSchema[str] = ""

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        if value is None or value in SCHEDULE_PRESETS:
            return value
        from croniter import croniter  # an Airflow dependency

        if not croniter.is_valid(value):
            raise ValueError(f"not a cron expression or one of {', '.join(sorted(SCHEDULE_PRESETS))}")
        return value

    @model_validator(mode="after")
    def _graph_consistent(self) -> ClientConfig:
        logical = [f.name for s in self.sources for f in s.files]
        dupes = sorted({n for n in logical if logical.count(n) > 1})
        if dupes:
            raise ValueError(f"logical file names must be unique: {', '.join(dupes)}")
        tables = [f.bronze_table for s in self.sources for f in s.files]
        dupes = sorted({t for t in tables if tables.count(t) > 1})
        if dupes:
            raise ValueError(f"bronze tables must be unique: {', '.join(dupes)}")
        reserved = RESERVED_GROUPS & set(logical)
        if reserved:
            raise ValueError(f"logical file names reserved for the DAG: {', '.join(sorted(reserved))}")
        view_names = [v.name for v in self.views]
        dupes = sorted({v for v in view_names if view_names.count(v) > 1})
        if dupes:
            raise ValueError(f"views listed more than once: {', '.join(dupes)}")
        for layer in ("silver", "gold"):
            steps: list[SqlStep] = getattr(self, layer)
            names = [s.name for s in steps]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{layer} step names must be unique: {', '.join(dupes)}")
            for step in steps:
                missing = sorted(set(step.depends_on) - set(names))
                if missing:
                    raise ValueError(
                        f"{layer} step '{step.name}' depends on unknown step(s): {', '.join(missing)}"
                    )
            _check_acyclic(layer, steps)
        self._delivery_start_possible()
        snapshots = sorted(s.name for s in self.gold if s.delivery == "snapshot")
        if snapshots:
            raise ValueError(f"delivery: snapshot is for silver steps, not gold: {', '.join(snapshots)}")
        self._quality_tables_exist()
        self._lineage_tables_exist()
        return self

    def _delivery_start_possible(self) -> None:
        """A run started by its delivery needs files to watch and a schedule whose ticks
        (a backfill's days) are periodic."""
        if self.sensor.start != "delivery":
            return
        if self.schedule in ("@once", "@continuous"):
            raise ValueError(f"sensor.start: delivery needs a cron schedule (or none), not {self.schedule}")
        if not any(f.required and not f.is_database for _, f in self.files):
            raise ValueError("sensor.start: delivery watches files, and no required file is delivered")

    def _lineage_tables_exist(self) -> None:
        """Every table a lineage entry names is written by a step or loaded from a file."""
        gold, silver = {s.table for s in self.gold}, {s.table for s in self.silver}
        bronze = {f.bronze_table for s in self.sources for f in s.files}
        for i, entry in enumerate(self.lineage):
            for field, table, known in (
                ("gold", entry.gold, gold),
                ("silver", entry.silver, silver),
                ("bronze", entry.bronze, bronze),
            ):
                if table not in known:
                    raise ValueError(f"lineage[{i}].{field}: {table} is not a {field} table of this client")

    def _quality_tables_exist(self) -> None:
        """Every table a quality check names is written by a step of its layer."""
        written = {f"{layer}.{s.table}" for layer in ("silver", "gold") for s in getattr(self, layer)}
        q = self.quality
        named = [(f"keys[{c.table}]", c.table) for c in q.keys]
        named += [(f"joins[{c.table}.{c.column}]", c.table) for c in q.joins]
        named += [(f"joins[{c.table}.{c.column}].dimension", f"gold.{c.dimension}") for c in q.joins]
        named += [(f"row_counts[{t}]", t) for t in q.row_counts]
        for where, table in named:
            if table not in written:
                raise ValueError(f"quality.{where}: {table} is not a table written by a silver or gold step")
        for c in q.joins:
            if not c.table.startswith("gold."):
                raise ValueError(f"quality.joins[{c.table}.{c.column}]: joins are checked on gold facts")
        for t in q.row_counts:
            if not t.startswith("silver."):
                raise ValueError(f"quality.row_counts[{t}]: row counts are compared on silver tables")

    @property
    def bronze_schema(self) -> str:
        """``bronze_<client>``: the delivered rows, one child table per batch."""
        return f"bronze_{self.client}"

    @property
    def silver_schema(self) -> str:
        """``silver_<client>``: the cleaned rows of each batch."""
        return f"silver_{self.client}"

    @property
    def gold_schema(self) -> str:
        """``gold_<client>``: the star schema and its summaries."""
        return f"gold_{self.client}"

    @property
    def dag_id(self) -> str:
        """The client's DAG id: the client name."""
        return self.client

    @cached_property
    def files(self) -> list[tuple[SourceSystem, SourceFile]]:
        """Every (source system, logical file) of the client, in config order."""
        return [(system, f) for system in self.sources for f in system.files]

    @property
    def bronze_files(self) -> dict[str, str]:
        """Each bronze table (``schema.table``) and the logical file loaded into it."""
        return {f"{self.bronze_schema}.{f.bronze_table}": f.name for s in self.sources for f in s.files}

    def file(self, logical_name: str) -> tuple[SourceSystem, SourceFile]:
        """The (source system, logical file) named ``logical_name``; KeyError if none."""
        for system, f in self.files:
            if f.name == logical_name:
                return system, f
        raise KeyError(f"{self.client}: no source file named '{logical_name}'")

    def drift_policy(self, spec: SourceFile) -> str:
        """The schema drift policy of one logical file."""
        return spec.schema_drift or self.schema_drift

    @property
    def sql_dir(self) -> Path:
        """The client's own SQL folder: ``<ETL_SQL_DIR or sql>/clients/<client>``."""
        return SQL_DIR / "clients" / self.client

    @property
    def template_dir(self) -> Path | None:
        """The template's folder, ``<ETL_SQL_DIR or sql>/templates/<template>``, if any."""
        return SQL_DIR / "templates" / self.template if self.template else None

    @property
    def sql_search_path(self) -> list[Path]:
        """Where the client's SQL files are looked up: its own folder, then its template's."""
        return [self.sql_dir] + ([self.template_dir] if self.template_dir else [])

    @property
    def template_names(self) -> dict[str, str]:
        """The names a SQL template is rendered with: ``client``, ``bronze``, ``silver``, ``gold``."""
        return templates.variables(self.client)

    def sql_file(self, relpath: str) -> Path | None:
        """The file a step's ``sql`` names: the client's own, else the template's."""
        return templates.find(self.sql_search_path, relpath)

    def render_sql(self, relpath: str) -> str:
        """A step file's text with the client's names, as the DAG's SQL tasks render it."""
        return templates.render(self.sql_search_path, relpath, self.template_names)

    def migration_folders(self) -> list[tuple[str, Path]]:
        """(scope recorded in tools.schema_migrations, folder) of the client's migrations:
        its template's (scope: the client), then its own (scope ``<client>:own``); a client
        without a template has its own only (scope: the client)."""
        if self.template_dir is None:
            return [(self.client, self.sql_dir / "migrations")]
        own = (f"{self.client}:own", self.sql_dir / "migrations")
        return [(self.client, self.template_dir / "migrations"), own]


def _check_acyclic(layer: str, steps: list[SqlStep]) -> None:
    deps = {s.name: set(s.depends_on) for s in steps}
    done: set[str] = set()
    while deps:
        ready = {n for n, d in deps.items() if d <= done}
        if not ready:
            raise ValueError(f"{layer} steps have a dependency cycle: {', '.join(sorted(deps))}")
        done |= ready
        deps = {n: d for n, d in deps.items() if n not in ready}


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# What names an entry of each list of the config, in errors: its name, a column its
# source header, a quality check its table.
_ENTRY_NAMES = ("name", "source", "table")


def _entry_name(entry: object) -> str | None:
    """How an error names one entry of a list: ``crm``, ``sls_price``, ``silver.x``."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        for key in _ENTRY_NAMES:
            value = entry.get(key)
            if isinstance(value, str) and value:
                if key == "table" and isinstance(entry.get("column"), str):
                    return f"{value}.{entry['column']}"  # a join check: the fact's column
                return value
    return None


def error_path(data: object, loc: tuple) -> str:
    """A validation error's location with list entries named, not counted:
    ``sources[crm].files[sales_details].columns[sls_price].type`` rather than
    ``sources.0.files.2.columns.8.type`` (an entry without a name keeps its index)."""
    where = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            entry = node[part] if isinstance(node, list) and part < len(node) else None
            where += f"[{_entry_name(entry) or part}]"
            node = entry
        else:
            where += f".{part}" if where else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return where


def _format_error(file_name: str, data: dict, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))  # pydantic's wrappers
        where = error_path(data, loc) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return f"{file_name}: " + "; ".join(parts)


def defaults_for(folder: Path) -> dict:
    """The defaults a client file of ``folder`` is merged over: the built-in
    ``_defaults.yaml``, with the folder's own ``_defaults.yaml`` (if any) over it."""
    defaults, _ = _read_shared_yaml(CLIENTS_DIR / DEFAULTS_FILE)
    own = folder / DEFAULTS_FILE
    if own.exists() and own.resolve() != (CLIENTS_DIR / DEFAULTS_FILE).resolve():
        defaults = _merge(defaults, _read_shared_yaml(own)[0])
    return defaults


# The lists of a template whose entries a client file matches by name (override or add).
_NAMED_LISTS = ("silver", "gold", "views")


def _merge_named(base: list, override: list) -> list:
    """``override``'s entries over ``base``'s: same name -> merged, new name -> appended."""
    merged = list(base)
    names = [_entry_name(entry) for entry in merged]
    for entry in override:
        name = _entry_name(entry)
        if name is not None and name in names:
            i = names.index(name)
            old = merged[i] if isinstance(merged[i], dict) else {"name": merged[i]}
            merged[i] = _merge(old, entry if isinstance(entry, dict) else {"name": entry})
        else:
            merged.append(entry)
            names.append(name)
    return merged


def template_settings(template: object, file_name: str) -> tuple[dict, bytes]:
    """A template's ``template.yaml`` (settings, raw bytes); a one-line error if none."""
    folder = SQL_DIR / "templates"
    path = folder / str(template) / TEMPLATE_FILE
    named = isinstance(template, str) and re.fullmatch(r"[a-z_][a-z0-9_]{0,47}", template)
    if not named or not path.is_file():
        known = sorted(p.parent.name for p in folder.glob(f"*/{TEMPLATE_FILE}"))
        raise ConfigError(
            f"{file_name}: template: no template {template!r} in {folder} "
            f"(there are: {', '.join(known) or 'none'})"
        )
    return _read_shared_yaml(path)


def _with_template(raw: dict, file_name: str) -> tuple[dict, bytes]:
    """The client file over its template's settings (if it names one), and those bytes."""
    if raw.get("template") is None:
        return raw, b""
    settings, text = template_settings(raw["template"], file_name)
    data = _merge(settings, {k: v for k, v in raw.items() if k not in _NAMED_LISTS})
    for key in _NAMED_LISTS:
        if isinstance(raw.get(key), list):
            data[key] = _merge_named(settings.get(key) or [], raw[key])
    # A client that replaces a silver step's SQL replaces what the template said of how
    # that SQL computes its key from bronze (a template's bronze_key is of its own SQL).
    own = {e.get("name"): e for e in raw.get("silver") or [] if isinstance(e, dict)}
    for entry in data.get("silver") or []:
        mine = own.get(entry.get("name")) if isinstance(entry, dict) else None
        if mine is not None and "sql" in mine and "bronze_key" not in mine:
            entry.pop("bronze_key", None)  # a merged entry: a dict of its own
    return data, text


def check_template_contract(cfg: ClientConfig, file_name: str) -> None:
    """A templated client's steps against its template: each step file exists, and each
    silver and gold target is a table its migrations create, with ``dwh_batch_id`` (the
    batch-scoped replace every step relies on). A one-line ConfigError otherwise."""
    if cfg.template_dir is None:
        return
    migrations = sorted(p for _, folder in cfg.migration_folders() for p in folder.glob("V*.sql"))
    created = templates.created_tables(migrations)
    where = f"sql/templates/{cfg.template} or sql/clients/{cfg.client}"
    entries: list[tuple[str, str, str | None, str | None]] = [
        (layer, s.name, s.sql, s.table) for layer in ("silver", "gold") for s in getattr(cfg, layer)
    ]
    entries += [("views", v.name, v.sql, None) for v in cfg.views]
    for layer, name, relpath, table in entries:
        if relpath is not None and cfg.sql_file(relpath) is None:
            raise ConfigError(f"{file_name}: {layer}[{name}].sql: {relpath} is in neither {where}")
        if table is None:
            continue
        if table not in created[layer]:
            raise ConfigError(
                f"{file_name}: {layer}[{name}].table: {layer}.{table} is not created by the migrations "
                f"of template {cfg.template} (or the client's own)"
            )
        if not created[layer][table]:
            raise ConfigError(
                f"{file_name}: {layer}[{name}].table: {layer}.{table} has no dwh_batch_id column "
                "(every step replaces its batch's rows by it)"
            )


def load_client(path: Path | str, defaults: dict | None = None) -> ClientConfig:
    """Read, merge over its template's settings and the defaults, validate one client file.

    ``defaults``: merged over the built-in defaults instead of the folder's own file.
    """
    path = Path(path)
    if defaults is None:
        defaults = defaults_for(path.parent)
    else:
        defaults = _merge(_read_shared_yaml(CLIENTS_DIR / DEFAULTS_FILE)[0], defaults)
    raw = _read_yaml(path)
    if raw.get("client") != path.stem:
        raise ConfigError(f"{path.name}: client: must equal the file name '{path.stem}'")
    own, template_text = _with_template(raw, path.name)
    data = _merge(defaults, own)
    version = hashlib.sha256(path.read_bytes() + template_text).hexdigest()[:12]
    data.update(config_file=path.name, config_version=version)
    try:
        cfg = ClientConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(path.name, data, exc)) from None
    check_template_contract(cfg, path.name)
    return cfg


def config_from(data: dict, name: str = "<config>") -> ClientConfig:
    """A client config from a mapping (as a client file holds it), merged over its
    template's settings and the built-in defaults: for scripts and tests that build a
    client in code."""
    own, _ = _with_template(data, name)
    merged = _merge(_read_shared_yaml(CLIENTS_DIR / DEFAULTS_FILE)[0], own)
    try:
        cfg = ClientConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_error(name, merged, exc)) from None
    check_template_contract(cfg, name)
    return cfg


def _read_shared_yaml(path: Path) -> tuple[dict, bytes]:
    """A file many clients merge over (``_defaults.yaml``, a ``template.yaml``): its
    settings and bytes, parsed once while the file is unchanged (a DAG file of hundreds
    of clients reads each once, not once per client). The settings are shared: callers
    merge over them (``_merge`` copies, never changes its inputs)."""
    stat = path.stat()
    return _parsed(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _parsed(path: Path, mtime_ns: int, size: int) -> tuple[dict, bytes]:
    return _read_yaml(path), path.read_bytes()


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML: {exc}".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: (top level): must be a mapping of settings")
    return data


def clients_dir() -> Path:
    """Where the client files are: ``ETL_CLIENTS_DIR`` if set, else include/clients."""
    return Path(os.environ.get("ETL_CLIENTS_DIR", CLIENTS_DIR))


def client_files(folder: Path | None = None) -> list[Path]:
    """The client files of a folder (``*.yaml`` not starting with ``_``), sorted."""
    folder = folder or clients_dir()
    return sorted(p for p in folder.glob("*.yaml") if not p.name.startswith("_"))


def config_for(client: str) -> ClientConfig:
    """One client's config, read from the clients folder (what every task does first)."""
    return load_client(clients_dir() / f"{client}.yaml")


# The client DAGs are spread over this many DAG files (dags/client_pipelines_<k>.py), so
# the DAG processor parses them in parallel and no file holds every client.
DAG_FILE_SHARDS = 16


def shard_of(client: str, shards: int = DAG_FILE_SHARDS) -> int:
    """The DAG file of a client: a stable hash of its name, so a client keeps its file
    (and its DAG id) whatever clients are added or removed."""
    return zlib.crc32(client.encode()) % shards


def load_clients(
    folder: Path | None = None, only: str | None = None, shard: int | None = None
) -> tuple[list[ClientConfig], dict[str, str]]:
    """All clients that load, and the errors of those that do not (file name -> message).

    ``only``: just that client's file, if there is one. ``shard``: just the clients of
    that DAG file (``shard_of``); the other files are not read.
    """
    folder = folder or clients_dir()
    try:
        defaults = defaults_for(folder)
    except ConfigError as exc:  # broken defaults break every client: each says so
        return [], {path.name: f"{path.name}: {exc}" for path in client_files(folder)}
    configs, errors = [], {}
    for path in client_files(folder):
        if only is not None and path.stem != only:
            continue
        if shard is not None and shard_of(path.stem) != shard:
            continue
        try:
            configs.append(load_client(path, defaults))
        except ConfigError as exc:
            errors[path.name] = str(exc)
    return configs, errors


def client_schema() -> dict:
    """The JSON Schema of a client file, for editors and reviewers.

    Generated from the model; what ``_defaults.yaml`` provides is optional in a client
    file and shows its default there.
    """
    schema = ClientConfig.model_json_schema()
    schema["title"] = "Client config (include/clients/<client>.yaml)"
    defaults = _read_yaml(CLIENTS_DIR / DEFAULTS_FILE)

    def relax(node: dict, given: dict) -> None:
        """Drop from ``node``'s required list what ``given`` provides, and show it as default."""
        required = [name for name in node.get("required", []) if name not in given]
        if required:
            node["required"] = required
        else:
            node.pop("required", None)
        for name, value in given.items():
            prop = node.get("properties", {}).get(name)
            if prop is None:
                continue
            ref = prop.get("$ref")
            if isinstance(value, dict) and ref:
                relax(schema["$defs"][ref.rsplit("/", 1)[1]], value)
            else:
                prop["default"] = value.isoformat() if isinstance(value, date) else value

    relax(schema, defaults)
    # A client of a template takes its sources from the template: required without one.
    schema["required"] = [name for name in schema.get("required", []) if name != "sources"]
    schema["if"] = {"not": {"required": ["template"]}}
    schema["then"] = {"required": ["sources"]}
    # A view is written as a plain name too (View's "before" validator turns it into one).
    name = schema["$defs"]["View"]["properties"]["name"]
    schema["properties"]["views"]["items"] = {"anyOf": [{"$ref": "#/$defs/View"}, name]}
    return schema


if __name__ == "__main__":
    import json
    import sys

    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m include.etl.config --schema")
    print(json.dumps(client_schema(), indent=2, sort_keys=True))
