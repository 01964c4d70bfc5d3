"""A delivered file's group (convert, validate_mapping, validate_rows, load_bronze) runs in
a task process without importing pandas, polars or Arrow's dataset module: pyarrow
imports pandas on the first Python or NumPy value it converts, and ADBC's DB-API module
imports all three, 0.4 s of each task process (include/etl/ingest/arrays.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg

from include.etl.config import ClientConfig
from include.etl.ingest.landing import Landing
from include.etl.orchestration import tasks
from tests.conftest import deliver_demo

HEAVY = ("pandas", "polars", "pyarrow.dataset")

GROUP = """
import json, sys
from include.etl.orchestration import tasks

batch = json.loads(sys.argv[1])
before = [m for m in {heavy} if m in sys.modules]
ctx = lambda task: tasks.RunContext(dag_run_id="no-pandas", task_id=task)
parquet = tasks.convert("client1", "sales_details", batch, ctx("convert"))
tasks.validate_mapping("client1", "sales_details", batch, parquet, ctx("validate_mapping"))
tasks.validate_rows("client1", "sales_details", batch, parquet, ctx("validate_rows"))
rows = tasks.load_bronze("client1", "sales_details", batch, parquet, ctx("load_bronze"))
print(json.dumps({{"before": before, "after": [m for m in {heavy} if m in sys.modules], "rows": rows}}))
"""


def test_a_files_group_imports_no_pandas(
    conn: psycopg.Connection, cfg: ClientConfig, landing: Landing, tmp_path
) -> None:
    def edit(path) -> None:  # a rejected row and a duplicated key: validation's every path
        if path.name == "sales_details.csv":
            lines = path.read_text().splitlines()
            bad = lines[1].split(",")
            bad[-1] = "not a price"
            path.write_text("\n".join([*lines, ",".join(bad), lines[2]]) + "\n")

    deliver_demo("client1", landing, tmp_path / "generated", rows=300, edit=edit)
    run = tasks.RunContext(dag_run_id="no-pandas", task_id="open_batch")
    batch = tasks.open_batch(cfg.client, "start", None, run)
    out = subprocess.run(
        [sys.executable, "-c", GROUP.format(heavy=HEAVY), json.dumps(batch)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] == [] and result["after"] == []
    loaded = conn.execute(
        "SELECT count(*) FROM bronze_client1.crm_sales_details WHERE dwh_batch_id = %s", (batch["batch_id"],)
    ).fetchone()
    rejected = conn.execute(
        """SELECT raw_record->>'sls_price', reason FROM tools.rejected_rows
           WHERE client_schema = %s AND batch_id = %s AND logical_source_file = 'sales_details'""",
        (cfg.client, batch["batch_id"]),
    ).fetchall()
    assert ("not a price", "sls_price: not a number: 'not a price'") in rejected
    (raw,) = (landing.root / "raw").rglob("sales_details*.csv")
    delivered = len(raw.read_text().splitlines()) - 1  # less the header
    assert loaded == (result["rows"],) and result["rows"] == delivered - len(rejected)
