"""The DAG factory: one DAG per client config, all of the same shape. It only wires the
tasks of ``operators``.

    wait_for_files >> open_batch >> [<file>.convert >> .validate_mapping >> .validate_rows
    >> .load_bronze, one group per file] >> silver.* >> gold.* (dimensions before facts)
    >> refresh_views.* >> quality.{silver,gold} >> close_batch (after every other task,
    whatever happened; fails if the batch did, and publishes the gold Assets if it did not)

Parse time only reads the local YAML files: no database, network or Variable access.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    BaseOperator,
    CronTriggerTimetable,
    Param,
    TaskGroup,
    chain,
)
from airflow.sdk.definitions._internal.node import DAGNode  # a task, mapped or not
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.definitions.param import ParamsDict

from include.etl.config import DAG_FILE_SHARDS, RUN_MODES, ClientConfig, SqlStep, load_clients
from include.etl.orchestration.notifications import BatchOutcomeNotifier, deadline_missed
from include.etl.orchestration.operators import (
    FileStepOperator,
    IncomingFilesSensor,
    QualityCheckOperator,
    WarehouseSQLOperator,
    close_batch_task,
    open_batch_task,
    steps_of,
)
from include.etl.orchestration.triggers import DeliveryWatcher
from include.etl.warehouse.quality import checks_for

log = logging.getLogger(__name__)


def run_mode_params(with_database: bool = False) -> dict[str, Param]:
    """The trigger form: run mode and, for restart / reprocessing, the batch id; for a
    client with database sources, ``full_load``."""
    full_load = {
        "full_load": Param(
            False,
            type="boolean",
            title="Full load",
            description="database sources: ignore the high-water mark and read the whole table "
            "(rows replace older ones by key, no duplicates)",
        )
    }
    return (full_load if with_database else {}) | {
        "mode": Param(
            "start",
            type="string",
            enum=list(RUN_MODES),
            title="Run mode",
            description="start: a new batch from new files; "
            "restart / reprocessing: run an existing batch again",
        ),
        "batch_id": Param(
            None,
            type=["null", "string"],
            pattern=r"^BATCH\d{6}$",
            title="Batch id",
            description="restart / reprocessing only; default: the latest failed batch",
        ),
    }


@functools.cache
def _check_run_mode_params(with_database: bool = False) -> None:
    """Validate the run-mode params as Airflow does a scheduled DAG's: defaults fit the schema."""
    ParamsDict(run_mode_params(with_database)).validate()


def render_doc(cfg: ClientConfig) -> str:
    """The DAG's doc_md: the client, its files, run modes, steps and gates, from its config."""
    by_delivery = cfg.sensor.start == "delivery"
    started = ", runs started by a complete delivery (`sensor.start: delivery`)" if by_delivery else ""
    lines = [
        f"# {cfg.display_name} (`{cfg.client}`)",
        "",
        cfg.description.strip(),
        "",
        f"- **Owner:** {cfg.owner}; alerts to "
        + (", ".join([*cfg.alerts.emails, *(r.target for r in cfg.alerts.routes)]) or "nobody"),
        f"- **Schedule:** `{cfg.schedule}`{started}",
        f"- **Config:** `{cfg.config_file}` version `{cfg.config_version}`",
        f"- **Warehouse:** `{cfg.bronze_schema}` → `{cfg.silver_schema}` → `{cfg.gold_schema}`",
        "",
        "| system | logical file | pattern | type | bronze table | required |",
        "|---|---|---|---|---|---|",
    ]
    for system, f in cfg.files:
        where = (
            f"{f.database.conn_id}: {f.database.table or f.database.query} (by {f.database.watermark})"
            if f.database
            else f.pattern
        )
        lines.append(
            f"| {system.name} | `{f.name}` | `{where}` | {f.type} | "
            f"`{f.bronze_table}` | {'yes' if f.required else 'no'} |"
        )
    lines += [
        "",
        "**Run modes** (trigger form): `start` claims new files under a new batch id; "
        "`restart` runs a batch again from its claimed files (a fixed file goes back into "
        "incoming under its claimed name); `reprocessing` runs it again from its Parquet. "
        "Without `batch_id`, both take the latest failed batch.",
        "",
        f"**Silver:** {', '.join(s.name for s in cfg.silver) or '—'}  ",
        f"**Gold:** {', '.join(s.name for s in cfg.gold) or '—'}  ",
        f"**Views:** {', '.join(v.name for v in cfg.views) or '—'}  ",
        f"**Quality gates:** {len(cfg.quality.keys)} key, {len(cfg.quality.joins)} join and "
        f"{len(cfg.quality.row_counts)} row-count checks (a drop of at most {cfg.quality.max_row_drop:.0%})",
    ]
    return "\n".join(lines)


def deadline_of(cfg: ClientConfig) -> DeadlineAlert | None:
    """Airflow's deadline alert for the client's ``deadline:``: when the run is not done
    ``within`` its logical date (or its queuing), ``notifications.deadline_missed``."""
    if cfg.deadline is None:
        return None
    reference = (
        DeadlineReference.DAGRUN_QUEUED_AT
        if cfg.deadline.of == "queued"
        else DeadlineReference.DAGRUN_LOGICAL_DATE
    )
    said = f"within {cfg.deadline.within} of its {cfg.deadline.of.replace('_', ' ')}"
    return DeadlineAlert(
        reference=reference,
        interval=cfg.deadline.interval,
        callback=SyncCallback(deadline_missed, kwargs={"client": cfg.client, "deadline": said}),
    )


def _wire_steps(steps: list[SqlStep], make: Callable[[SqlStep], WarehouseSQLOperator]) -> None:
    """One task per step, each downstream of the steps it depends on."""
    tasks: dict[str, WarehouseSQLOperator] = {}
    pending = list(steps)
    while pending:  # the config model has already refused cycles
        step = next(s for s in pending if set(s.depends_on) <= set(tasks))
        pending.remove(step)
        tasks[step.name] = make(step)
        for dependency in step.depends_on:
            tasks[dependency] >> tasks[step.name]


def must_end_before(tasks: Iterable[DAGNode]) -> list[DAGNode]:
    """The tasks a task run after all of ``tasks`` (``close_batch``, trigger rule
    ``all_done``) waits for directly: all but those that another task has as its only
    upstream. That task ends (runs, or is skipped or upstream-failed) only after its one
    upstream has ended, so waiting for it waits for both, and a file's group
    (convert >> ... >> load_bronze) is waited for through its last step. A task with
    several upstreams is not enough: it is upstream-failed as soon as one of them fails,
    while the others may still run, so each of those is waited for itself."""
    return [t for t in tasks if not any(d.upstream_task_ids == {t.node_id} for d in t.downstream_list)]


def schedule_of(cfg: ClientConfig) -> Any:
    """``sensor.start: schedule``: the config's schedule. ``delivery``: the client's
    delivery asset, watched in the triggerer by its ``DeliveryWatcher`` (its events start
    runs), or the schedule's ticks, which still say the days a backfill covers."""
    if cfg.sensor.start != "delivery":
        return cfg.schedule
    name = f"{cfg.client}_delivery"
    watcher = DeliveryWatcher(cfg.client, cfg.sensor.poke_interval_seconds, cfg.sensor.timeout_seconds)
    # An "x-" scheme is Airflow's for private URIs: no provider's normalizer is looked up
    # (looking one up imports every provider's asset handlers, in every parse).
    delivery = Asset(name=name, uri=f"x-etl-delivery://{cfg.client}", watchers=[AssetWatcher(name, watcher)])
    if cfg.schedule is None:
        return [delivery]
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cfg.schedule, timezone="UTC"), assets=delivery)


def build_dag(cfg: ClientConfig) -> DAG:
    """The client's DAG (see the module docstring for its shape).

    Only the config is read: no database, network or Variable access.
    """
    default_args = {
        "owner": cfg.owner,
        "retries": cfg.retries,
        "retry_delay": timedelta(seconds=cfg.retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(minutes=cfg.task_timeout_minutes),
    }
    with DAG(
        dag_id=cfg.dag_id,
        description=cfg.display_name,
        schedule=schedule_of(cfg),
        start_date=datetime.combine(cfg.start_date, datetime.min.time()),
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        tags=sorted({*cfg.tags, f"client:{cfg.client}"}),
        doc_md=render_doc(cfg),
        # Step files are Jinja templates: the client's folder, then its template's, rendered
        # with its names ({{ silver }} -> silver_<client>; "Rendered Template" shows them).
        template_searchpath=[str(p) for p in cfg.sql_search_path],
        user_defined_macros=cfg.template_names,
        jinja_environment_kwargs={"keep_trailing_newline": True},  # as include.etl.templates renders
        deadline=deadline_of(cfg),
    ) as dag:
        wait = IncomingFilesSensor(
            task_id="wait_for_files",
            client=cfg.client,
            poke_interval=cfg.sensor.poke_interval_seconds,
            timeout=cfg.sensor.timeout_seconds,
            deferrable=cfg.sensor.deferrable,
            start=cfg.sensor.start,
            # Retries as the other tasks: a timeout fails at once anyway, and a retry covers
            # Airflow's reschedule race (apache/airflow#71172: a poke's late "success" seen
            # after the next poke was queued fails the sensor).
        )
        batch = open_batch_task(cfg.client)
        wait >> batch

        groups: list[list[FileStepOperator]] = []
        loads: list[BaseOperator] = []
        for _, spec in cfg.files:
            with TaskGroup(group_id=spec.name, tooltip=f"{spec.type} → {spec.bronze_table}"):
                steps = [
                    FileStepOperator(client=cfg.client, logical=spec.name, step=s) for s in steps_of(spec)
                ]
                if not spec.required:
                    # An optional file that fails does so alone: silver goes on without it,
                    # and close_batch ends the batch PARTIAL (red, never silently green).
                    done = EmptyOperator(task_id="done", trigger_rule="all_done")
            chain(*steps)  # each step reads the previous step's Parquet name from XCom
            groups.append(steps)
            if spec.required:
                loads.append(steps[-1])
            else:
                steps[-1] >> done
                loads.append(done)
        # Every step reads the batch from open_batch's XCom; the first of each group follows
        # it, the others follow the step before them.
        batch >> [steps[0] for steps in groups]

        def sql_step(layer: str, schema: str) -> Callable[[SqlStep], WarehouseSQLOperator]:
            def make(step: SqlStep) -> WarehouseSQLOperator:
                return WarehouseSQLOperator(
                    task_id=step.name,
                    client=cfg.client,
                    layer=layer,
                    step=step.name,
                    target=f"{schema}.{step.table}",
                    sql_file=step.sql,
                    snapshot_key=step.snapshot_key,
                    trigger_rule="none_failed_min_one_success",  # skipped when nothing loaded
                )

            return make

        with TaskGroup(group_id="silver") as silver:
            _wire_steps(cfg.silver, sql_step("silver", cfg.silver_schema))
        with TaskGroup(group_id="gold") as gold:
            _wire_steps(cfg.gold, sql_step("gold", cfg.gold_schema))
        with TaskGroup(group_id="refresh_views") as views:
            previous = None
            for view in cfg.views:
                # a summary table's own SQL file (batch-scoped), else a whole refresh
                how: dict[str, Any] = (
                    {"sql_file": view.sql}
                    if view.sql
                    else {"sql": f'REFRESH MATERIALIZED VIEW "{cfg.gold_schema}"."{view.name}"'}
                )
                refresh = WarehouseSQLOperator(
                    task_id=view.name,
                    client=cfg.client,
                    layer="views",
                    step=view.name,
                    target=f"{cfg.gold_schema}.{view.name}",
                    trigger_rule="none_failed_min_one_success",  # skipped when nothing loaded
                    **how,
                )
                if previous is not None:
                    previous >> refresh
                previous = refresh
        loads >> silver >> gold >> views

        # Quality gates after the views, one task per layer with checks (close_batch follows).
        gates = [(layer, checks_for(cfg, layer)) for layer in ("silver", "gold")]
        if any(checks for _, checks in gates):
            with TaskGroup(group_id="quality") as quality:
                for layer, checks in gates:
                    if checks:
                        QualityCheckOperator(
                            task_id=layer,
                            client=cfg.client,
                            checks=checks,
                            trigger_rule="none_failed_min_one_success",
                        )
            (views if cfg.views else gold if cfg.gold else silver) >> quality

        # One alert per batch outcome: close_batch's callbacks, whatever else went red.
        alerting = [BatchOutcomeNotifier(cfg.client)] if cfg.alerts.emails or cfg.alerts.routes else []
        closed = close_batch_task.override(
            outlets=[
                Asset(name=f"{cfg.gold_schema}.{s.table}", uri=f"x-warehouse://{cfg.gold_schema}/{s.table}")
                for s in cfg.gold
            ],
            on_failure_callback=alerting,
            on_success_callback=alerting,
        )(cfg.client, batch)  # type: ignore[arg-type]  # TaskFlow passes the batch's XCom
        # After every other task, so a batch never closes while part of it still runs.
        closed << must_end_before(t for t in dag.tasks if t.task_id != "close_batch")
    # The run-mode params are set once the tasks exist: a task built inside a DAG gets its
    # own deep copy of the DAG's params (about half the cost of building a task), and the
    # tasks never need one, since a task's params at run time are the DAG's merged with its
    # own. Every client has the same params, validated once per process
    # (_check_run_mode_params), so they are set the way Airflow's own converter sets them,
    # without validating them again for each DAG (jsonschema checks the schema itself on
    # every call: about a millisecond a DAG). Each DAG gets its own Param objects.
    with_database = any(f.is_database for _, f in cfg.files)
    _check_run_mode_params(with_database)
    object.__setattr__(dag, "params", ParamsDict(run_mode_params(with_database)))
    return dag


def build_all(only: str | None = None, shard: int | None = None) -> tuple[dict[str, DAG], dict[str, str]]:
    """Every client's DAG, and the errors of the clients that could not be built.

    ``only``: build just that DAG (and read just its config). A worker that runs a task
    parses the DAG file with Airflow's parsing context naming the task's DAG, and needs
    no other client's DAG; the DAG processor parses without it and gets every client.
    ``shard``: only the clients of that DAG file (``include.etl.config.shard_of``).
    """
    with _collector_paused(freeze_after=only is None):
        configs, errors = load_clients(only=only, shard=shard)
        dags = {}
        for cfg in configs:
            try:
                dags[cfg.dag_id] = build_dag(cfg)
            except Exception as exc:  # one client's mistake must not hide the others
                errors[cfg.config_file] = f"{cfg.config_file}: {' '.join(str(exc).split())}"
                log.error("client %s not built: %s", cfg.client, errors[cfg.config_file])
    return dags, errors


@contextlib.contextmanager
def _collector_paused(freeze_after: bool) -> Iterator[None]:
    """Python's cyclic garbage collector paused while a DAG file's DAGs are built.

    A build makes hundreds of thousands of objects that all live as long as the process
    (the DAGs, their tasks, groups and edges), and the collector, triggered by the count
    of new objects, walks them again and again while they are made: about a tenth of a
    parse (docs/scale.md). The few cycles left over as garbage are collected once it
    runs again. ``freeze_after`` (the DAG processor's parse of a whole DAG file, a
    process that ends once it has serialized them): the DAGs then join the permanent
    generation (``gc.freeze``, as the processor does with its own heap before it forks
    the parsing process), so the serialization that follows does not walk them either.
    A worker's parse builds one DAG and keeps the collector as it was.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
    if freeze_after:
        gc.freeze()


def build_shard(dag_file: str, only: str | None = None) -> tuple[dict[str, DAG], dict[str, str]]:
    """The DAGs of the clients of one DAG file, ``dags/client_pipelines_<k>.py``: shard k."""
    match = re.fullmatch(r"client_pipelines_(\d+)\.py", Path(dag_file).name)
    if match is None or int(match.group(1)) >= DAG_FILE_SHARDS:
        raise ValueError(f"{dag_file}: not a client DAG file (client_pipelines_0..{DAG_FILE_SHARDS - 1}.py)")
    return build_all(only=only, shard=int(match.group(1)))
