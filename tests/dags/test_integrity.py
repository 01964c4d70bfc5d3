"""DagBag integrity: every client config becomes a DAG that follows the house rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from include.etl.config import DAG_FILE_SHARDS, client_files, shard_of
from include.etl.orchestration.operators import _template_source

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = [p.stem for p in client_files()]


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}


def test_one_dag_per_client_config_and_housekeeping(dagbag: DagBag) -> None:
    assert sorted(dagbag.dag_ids) == sorted([*CLIENTS, "housekeeping"])


def test_housekeeping_purges_every_client_then_airflows_metadata(dagbag: DagBag) -> None:
    dag = dagbag.dags["housekeeping"]
    assert dag.schedule == "@daily" and dag.max_active_runs == 1 and dag.doc_md
    assert sorted(dag.task_ids) == sorted([*(f"purge.{c}" for c in CLIENTS), "airflow_metadata"])
    assert dag.get_task("airflow_metadata").upstream_task_ids == {f"purge.{c}" for c in CLIENTS}
    assert dag.params["dry_run"] is None  # empty: a dry run when triggered by hand


@pytest.mark.parametrize("client", CLIENTS)
def test_house_rules(dagbag: DagBag, clients: dict, client: str) -> None:
    dag = dagbag.dags[client]
    cfg = clients[client]
    assert dag.owner == cfg.owner != "airflow"
    assert f"client:{client}" in dag.tags
    assert cfg.display_name in dag.doc_md and cfg.config_version in dag.doc_md
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.params["mode"] == "start"
    assert dag.params.get_param("mode").schema["enum"] == ["start", "restart", "reprocessing"]
    database = any(f.is_database for _, f in cfg.files)
    assert dag.params.validate() == {"mode": "start", "batch_id": None} | (
        {"full_load": False} if database else {}
    )
    for task in dag.tasks:
        assert task.retries == cfg.retries, task.task_id
    assert dag.get_task("wait_for_files").mode == "reschedule"
    assert dag.get_task("close_batch").trigger_rule == "all_done"


@pytest.mark.parametrize("client", CLIENTS)
def test_sql_steps_bind_the_batch_id(dagbag: DagBag, client: str) -> None:
    dag = dagbag.dags[client]
    sql_tasks = [t for t in dag.tasks if t.task_type == "WarehouseSQLOperator"]
    assert sql_tasks
    for task in sql_tasks:
        assert task.conn_id == "warehouse"
        assert "xcom_pull(task_ids='open_batch', key='batch_id')" in task.parameters["batch_id"]
        if task.task_id.startswith(("silver.", "gold.")):
            # DagBag resolves the template file: task.sql holds the SQL text itself.
            assert "%(batch_id)s" in task.sql, f"{task.sql_file} does not use the batch id"


@pytest.mark.parametrize("client", CLIENTS)
def test_gold_tables_are_assets_published_by_a_successful_close(
    dagbag: DagBag, clients: dict, client: str
) -> None:
    dag = dagbag.dags[client]
    cfg = clients[client]
    outlets = dag.get_task("close_batch").outlets
    assert [o.name for o in outlets] == [f"{cfg.gold_schema}.{s.table}" for s in cfg.gold]
    assert all(not dag.get_task(f"gold.{s.name}").outlets for s in cfg.gold)


@pytest.mark.parametrize("client", CLIENTS)
def test_close_batch_comes_after_every_task(dagbag: DagBag, clients: dict, client: str) -> None:
    """close_batch (all_done) starts only once every other task has ended: it waits for
    each directly, or for a task whose only upstream it is (which cannot end before it)."""
    dag = dagbag.dags[client]
    waits_for = dag.get_task("close_batch").upstream_task_ids

    def ends_before_close(task_id: str) -> bool:
        if task_id in waits_for:
            return True
        followers = [d for d in dag.get_task(task_id).downstream_list if d.upstream_task_ids == {task_id}]
        return any(ends_before_close(d.task_id) for d in followers)

    assert all(ends_before_close(t) for t in dag.task_ids if t != "close_batch")
    # By value: a file's group is waited for through its last step, the silver steps and
    # the gates directly (a task with several upstreams is upstream-failed by the first
    # that fails, while the others may still run).
    cfg = clients[client]
    lasts = {f"{s.name}.load_bronze" if s.required else f"{s.name}.done" for _, s in cfg.files}
    earlier = {t for t in dag.task_ids if t.endswith((".convert", ".validate_mapping", ".validate_rows"))}
    assert not earlier & waits_for
    if len(lasts) > 1:  # silver follows them all (one file: silver is its only follower)
        assert lasts <= waits_for
        assert {f"silver.{s.name}" for s in cfg.silver} <= waits_for
    assert {t for t in dag.task_ids if t.startswith("quality.")} <= waits_for


def test_parse_needs_no_database_and_is_fast() -> None:
    """Parsing reads local files only: it works with the warehouse unreachable."""
    env = {
        **os.environ,
        "AIRFLOW_CONN_WAREHOUSE": "postgresql://nobody@unreachable.invalid:1/none",
        "PYTHONPATH": str(ROOT),
    }
    code = (
        "import glob, runpy, sys, time; t = time.monotonic();"
        "dags = [d for f in glob.glob('dags/client_pipelines_*.py') for d in runpy.run_path(f)['dags']];"
        "heavy = ('include.etl.orchestration.tasks', 'pyarrow', 'pandas', 'psycopg');"
        "heavy = [m for m in heavy if m in sys.modules];"
        "print(len(dags), round(time.monotonic() - t, 2), ','.join(heavy) or '-')"
    )
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    count, _, heavy = out.stdout.split()[-3:]
    assert int(count) == len(CLIENTS)
    assert heavy == "-"  # what the tasks run (and the driver) is imported when they run, not at parse
    assert time.monotonic() - started < 120  # sanity bound only; speed is measured by the benchmark


def test_a_client_dag_file_names_the_airflow_modules_its_parse_imports() -> None:
    """The DAG processor imports the Airflow modules a DAG file names before it forks the
    file's parse (parsing_pre_import_modules); a client DAG file names those the factory
    imports, so no parse of any file imports an Airflow module again."""
    code = (
        "import sys; from airflow.utils.file import iter_airflow_imports;"
        "[__import__(m) for m in iter_airflow_imports('dags/client_pipelines_0.py')];"
        "before = set(sys.modules); import include.etl.orchestration.factory;"
        "print(' '.join(sorted(m for m in set(sys.modules) - before if m.startswith('airflow.'))) or '-')"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == "-"
    # every client DAG file is that one but for its shard number, so all name the same modules
    texts = {
        re.sub(r"shard \d+ of", "shard k of", p.read_text())
        for p in (ROOT / "dags").glob("client_pipelines_*.py")
    }
    assert len(texts) == 1


def test_clients_are_spread_over_the_dag_files_by_a_stable_hash(tmp_path: Path) -> None:
    """Each client is in exactly one DAG file, the one its name hashes to, so its DAG id
    and file stay put when clients are added or removed; every shard file exists."""
    files = {p.name for p in (ROOT / "dags").glob("client_pipelines_*.py")}
    assert files == {f"client_pipelines_{k}.py" for k in range(DAG_FILE_SHARDS)}
    names = [f"tenant{i:04d}" for i in range(400)]
    shards = {name: shard_of(name) for name in names}
    assert set(shards.values()) == set(range(DAG_FILE_SHARDS))  # all files used
    assert max(list(shards.values()).count(k) for k in range(DAG_FILE_SHARDS)) < 2 * 400 / DAG_FILE_SHARDS
    assert {n: shard_of(n) for n in names[:100]} == {n: shards[n] for n in names[:100]}  # stable
    assert shard_of("client1") == 8 and shard_of("client2") == 2  # crc32: the same on every machine


def test_each_shard_file_builds_only_its_clients(dagbag: DagBag) -> None:
    """The DagBag's DAGs come from the file their client hashes to."""
    for client in CLIENTS:
        assert Path(dagbag.dags[client].fileloc).name == f"client_pipelines_{shard_of(client)}.py"


def test_each_dag_has_its_own_run_mode_params(dagbag: DagBag) -> None:
    """The params are validated once per process, but no two DAGs share a Param object."""
    params = [dagbag.dags[client].params.get_param("mode") for client in CLIENTS]
    assert len({id(p) for p in params}) == len(CLIENTS)


def test_a_worker_parsing_for_one_dag_builds_only_that_client(
    dagbag: DagBag, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task runner parses with Airflow's parsing context: one client, not all of them."""
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "client2")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "open_batch")

    bag = DagBag(dag_folder=str(ROOT / "dags"))

    assert bag.dag_ids == ["client2"]
    assert bag.import_errors == {}
    assert bag.dags["client2"].task_dict.keys() == dagbag.dags["client2"].task_dict.keys()


def test_a_broken_config_is_an_import_error_and_the_others_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "clients"
    folder.mkdir()
    for path in (ROOT / "include" / "clients").glob("*.yaml"):
        (folder / path.name).write_text(path.read_text())
    broken = (folder / "client1.yaml").read_text().replace("client: client1", "client: client9")
    broken = broken.replace("template: retail_crm_erp", "template: retail_crm_erp\nsources: []")
    (folder / "client9.yaml").write_text(broken)
    monkeypatch.setenv("ETL_CLIENTS_DIR", str(folder))

    bag = DagBag(dag_folder=str(ROOT / "dags"))

    assert sorted(bag.dag_ids) == sorted([*CLIENTS, "housekeeping"])
    (path, message), *others = bag.import_errors.items()
    assert not others and path.endswith("client_config_errors.py")
    assert "client9.yaml: sources: List should have at least 1 item" in message


@pytest.mark.parametrize("client", CLIENTS)
def test_sql_steps_hold_their_files_text_as_airflow_reads_it(dagbag: DagBag, client: str) -> None:
    """The DagBag puts each step file's text in place of its name (the UI shows it), as
    Airflow's own resolution does: the same file, found in the DAG's template folders."""
    dag = dagbag.dags[client]
    env = dag.get_template_env()
    steps = [t for t in dag.tasks if t.task_type == "WarehouseSQLOperator" and t.sql_file]
    assert steps
    for task in steps:
        assert task.sql == env.loader.get_source(env, task.sql_file)[0], task.task_id


def test_a_step_file_is_found_as_jinja_finds_it_and_read_again_when_it_changes(tmp_path: Path) -> None:
    own, template = tmp_path / "own", tmp_path / "template"
    for folder in (own, template):
        (folder / "silver").mkdir(parents=True)
    (template / "silver" / "a.sql").write_text("SELECT 'template';\n")
    (template / "silver" / "b.sql").write_text("SELECT 'b';\n")
    (own / "silver" / "b.sql").mkdir()  # a folder of that name is no file: the template's is read
    folders = (str(own), str(template))

    assert _template_source(folders, "silver/a.sql") == "SELECT 'template';\n"
    assert _template_source(folders, "silver/b.sql") == "SELECT 'b';\n"
    (own / "silver" / "a.sql").write_text("SELECT 'own';\n")  # the client's own file comes first
    assert _template_source(folders, "silver/a.sql") == "SELECT 'own';\n"
    (own / "silver" / "a.sql").write_text("SELECT 'own, changed';\n")
    assert _template_source(folders, "silver/a.sql") == "SELECT 'own, changed';\n"
    assert _template_source(folders, "silver/missing.sql") is None
    (template / "silver" / "latin1.sql").write_bytes("SELECT 'caf\xe9';\n".encode("latin-1"))
    assert _template_source(folders, "silver/latin1.sql") is None  # not UTF-8: left to Airflow's method
    assert _template_source((str(own / "silver"),), "../../template/silver/a.sql") is None


def test_a_dag_files_parse_builds_with_the_collector_paused() -> None:
    """No garbage collection runs while a DAG file's DAGs are built; the collector is as
    it was afterwards. The DAG processor's parse (every client of the file) then freezes
    the DAGs it built (gc.freeze), a worker's parse (one client) does not."""
    code = """
import gc, json, sys
from include.etl.orchestration.factory import build_shard
runs = []  # the collections that ran while a client's config was read or its DAG built
def building():
    frame = sys._getframe()
    while frame and frame.f_code.co_name not in ("load_clients", "build_dag"):
        frame = frame.f_back
    return frame is not None
def seen(phase, info):
    if phase == "start" and building():
        runs.append(info["generation"])
gc.callbacks.append(seen)
result = {}
for name, only, enabled in (("worker", "client2", True), ("off", None, False), ("processor", None, True)):
    gc.enable() if enabled else gc.disable()
    frozen = gc.get_freeze_count()
    del runs[:]
    dags, _ = build_shard("client_pipelines_2.py", only=only)
    result[name] = [sorted(dags), len(runs), gc.isenabled(), gc.get_freeze_count() > frozen]
print(json.dumps(result))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.splitlines()[-1])
    shard_clients = sorted(c for c in CLIENTS if shard_of(c) == 2)
    assert "client2" in shard_clients
    assert result == {
        "worker": [["client2"], 0, True, False],
        "off": [shard_clients, 0, False, True],
        "processor": [shard_clients, 0, True, True],
    }
