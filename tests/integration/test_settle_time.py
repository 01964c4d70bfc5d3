"""A delivery is claimed only once it is complete: unchanged for the client's
``sensor.settle_seconds``, or, for a file with a ``ready_marker``, once the sender's marker
exists. A sender that writes a file in place under its final name is waited for, not
claimed half-written (which failed the batch on a truncated last line)."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from demo import generate
from include.etl.config import CLIENTS_DIR, SQL_DIR
from include.etl.ingest.landing import Landing
from include.etl.orchestration import tasks
from tests.conftest import complete

SETTLE = 2  # seconds


@pytest.fixture
def clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cfg) -> Path:
    """client1's real config, with a short settle time; sales_details waits for a marker
    when ``marker`` is set on it by the test."""
    folder = tmp_path / "clients"
    folder.mkdir()
    defaults = yaml.safe_load((CLIENTS_DIR / "_defaults.yaml").read_text())
    defaults["sensor"]["settle_seconds"] = SETTLE
    (folder / "_defaults.yaml").write_text(yaml.safe_dump(defaults))
    shutil.copy(CLIENTS_DIR / "client1.yaml", folder / "client1.yaml")
    monkeypatch.setenv("ETL_CLIENTS_DIR", str(folder))
    return folder


def with_ready_marker(folder: Path) -> None:
    """client1's sales_details file, delivered with a ``<name>.done`` marker."""
    config = yaml.safe_load((folder / "client1.yaml").read_text())
    template = SQL_DIR / "templates" / config["template"] / "template.yaml"
    config["sources"] = yaml.safe_load(template.read_text())["sources"]  # overridden as a whole
    sales = next(f for s in config["sources"] for f in s["files"] if f["name"] == "sales_details")
    sales["ready_marker"] = "{name}.done"
    (folder / "client1.yaml").write_text(yaml.safe_dump(config))


def run(task: str) -> tasks.RunContext:
    return tasks.RunContext(dag_run_id=f"settle-{uuid.uuid4().hex[:6]}", task_id=task)


def deliver_all_but_sales(landing: Landing, tmp_path: Path) -> Path:
    """client1's delivery, complete, but for the sales file: returned, not delivered."""
    sales = None
    for path in generate("client1", tmp_path / "generated", rows=2000):
        if path.name == "sales_details.csv":
            sales = path
            continue
        target = landing.raw("client1", path.parent.name, "incoming")
        target.mkdir(parents=True, exist_ok=True)
        complete(shutil.copy(path, target / path.name))
    assert sales is not None
    return sales


def test_a_file_written_slowly_in_place_is_waited_for(clients, conn, landing: Landing, tmp_path) -> None:
    source = deliver_all_but_sales(landing, tmp_path).read_text().splitlines(keepends=True)
    target = landing.raw("client1", "crm", "incoming") / "sales_details.csv"

    def write_slowly() -> None:  # the sender writes the file under its final name, bit by bit
        with target.open("w") as out:
            for start in range(0, len(source), len(source) // 6):
                out.writelines(source[start : start + len(source) // 6])
                out.flush()
                time.sleep(0.5)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    said = []
    while writer.is_alive():  # every poke while it is written: still waiting, with the reason
        said.append(tasks.files_ready("client1", "start", run("wait_for_files")))
        time.sleep(0.3)
    writer.join()
    assert said and all(s and "crm/sales_details.csv is still being written (size changed" in s for s in said)
    assert said[-1].startswith("still waiting for: crm/sales_details; crm/sales_details.csv is still being")

    poke = run("wait_for_files")
    deadline = time.monotonic() + SETTLE + 5
    while (waiting := tasks.files_ready("client1", "start", poke)) is not None:
        assert time.monotonic() < deadline, waiting
        time.sleep(0.3)

    batch = tasks.open_batch("client1", "start", None, tasks.RunContext(poke.dag_run_id, "open_batch"))
    claimed = landing.raw("client1", "crm", "incoming") / batch["files"]["sales_details"]
    assert claimed.read_text() == "".join(source)  # the whole file, last line included


def test_a_file_with_a_ready_marker_waits_for_it(clients, conn, landing: Landing, tmp_path) -> None:
    with_ready_marker(clients)
    sales = deliver_all_but_sales(landing, tmp_path)
    incoming = landing.raw("client1", "crm", "incoming")
    complete(shutil.copy(sales, incoming / "sales_details.csv"))  # old enough, but no marker yet

    poke = run("wait_for_files")
    assert tasks.files_ready("client1", "start", poke) == (
        "still waiting for: crm/sales_details; crm/sales_details.csv waits for its ready marker "
        "sales_details.csv.done"
    )
    (incoming / "sales_details.csv.done").touch()
    assert tasks.files_ready("client1", "start", poke) is None

    batch = tasks.open_batch("client1", "start", None, tasks.RunContext(poke.dag_run_id, "open_batch"))
    assert batch["files"]["sales_details"] == "sales_details_BATCH000001.csv"
    assert sorted(p.name for p in incoming.iterdir()) == sorted(
        batch["files"][f] for f in ("cust_info", "prd_info", "sales_details")
    )  # the marker is gone with the claim
    job = conn.execute(
        "SELECT message FROM tools.job_execution_log WHERE task_id = 'open_batch' AND dag_run_id = %s",
        (poke.dag_run_id,),
    ).fetchone()[0]
    assert "left in incoming" not in job  # the marker was never reported as a stray file
