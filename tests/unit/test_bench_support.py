"""What `make bench` and the binary bronze load rely on. No timing is asserted here."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from benchmarks import common, data, steps
from include.etl import config
from include.etl.config import Column, load_clients
from include.etl.ingest.bronze import MAX_IDENTIFIER, batch_table
from include.etl.ingest.validation import NotTypable, check_values, pg_type, pg_values

ROOT = Path(__file__).resolve().parents[2]


def column(kind: str, **extra: object) -> Column:
    return Column.model_validate({"source": "v", "type": kind, **extra})


def typed(kind: str, values: list, **extra: object) -> list:
    col = column(kind, **extra)
    array = pa.array(values, pa.string())
    return pg_values(array, col, pg_type(col, array)).to_pylist()


def test_typed_values_are_what_postgres_makes_of_the_normalised_text() -> None:
    assert typed("integer", [" 7 ", "+5", "-003", "", None]) == [7, 5, -3, None, None]
    assert typed("numeric", [" 9.90 ", "-0.50", "12.00", None]) == [
        Decimal("9.90"),
        Decimal("-0.50"),
        Decimal("12.00"),
        None,
    ]
    assert typed("numeric", ["5.", "12"]) == [Decimal("5"), Decimal("12")]
    assert typed("boolean", ["Yes", "0", " t ", None]) == [True, False, True, None]
    assert [str(v) for v in typed("date", ["2024-02-29"])] == ["2024-02-29"]
    assert [str(v) for v in typed("date", ["01/03/2024"], format="%d/%m/%Y")] == ["2024-03-01"]
    stamps = typed("timestamp", ["2024-01-02T03:04", "2024-01-02 03:04:05"])
    assert [str(v) for v in stamps] == ["2024-01-02 03:04:00", "2024-01-02 03:04:05"]
    text = pa.array(["  as delivered ", "", None])
    assert (
        pg_values(text, column("text"), pa.string()).to_pylist()
        == check_values(text, column("text"))[1].to_pylist()
    )


def test_values_arrow_cannot_type_exactly_are_refused() -> None:
    with pytest.raises(NotTypable):  # PostgreSQL keeps each value's scale
        typed("numeric", ["1.5", "1.50"])
    with pytest.raises(NotTypable):
        typed("integer", ["oops"])
    col = column("numeric")
    with pytest.raises(NotTypable):  # a later batch of another scale than the first
        pg_values(pa.array(["1.250"]), col, pg_type(col, pa.array(["1.25"])))
    with pytest.raises(NotTypable):  # more digits than a decimal128 holds
        typed("numeric", ["1" * 39])


def test_batch_tables_are_valid_identifiers() -> None:
    assert batch_table("crm_sales_details", "BATCH000001") == "crm_sales_details__batch000001"
    long = batch_table("t" * 63, "BATCH000001")
    assert len(long) <= MAX_IDENTIFIER and long.endswith("__batch000001")
    assert batch_table("t" * 63, "BATCH000001") != batch_table("t" * 62 + "u", "BATCH000001")


def test_bench_synthetic_clients_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data.synthetic_clients(tmp_path, count=3)
    monkeypatch.setattr(config, "SQL_DIR", tmp_path / "sql")  # the parse steps' ETL_SQL_DIR
    configs, errors = load_clients(tmp_path / "clients")
    assert not errors
    assert [c.client for c in configs] == ["bench000", "bench001", "bench002"]
    assert all(len(c.files) == 8 for c in configs)
    # each names the bench's template, whose SQL is client1's template's, where
    # ETL_SQL_DIR points the parse steps
    for cfg in configs:
        assert cfg.template == data.SYNTHETIC_TEMPLATE
        assert [spec.name for _, spec in cfg.files][-2:] == ["EXTRA_A", "EXTRA_B"]
        for step in (*cfg.silver, *cfg.gold):
            assert (tmp_path / "sql" / "templates" / cfg.template / step.sql).is_file()


def test_bench_ten_times(tmp_path: Path) -> None:
    src = tmp_path / "data" / "3" / "crm" / "sales_details.csv"
    src.parent.mkdir(parents=True)
    src.write_text('a,b\n1,"x\ny"\n2,z\n')
    big = data.ten_times(src)
    assert big == tmp_path / "data" / "3x10" / "sales_details.csv"
    assert big.read_text() == "a,b\n" + '1,"x\ny"\n2,z\n' * 10
    big.write_text("kept")  # written once, then reused while the source is the same
    assert data.ten_times(src).read_text() == "kept"
    src.write_text("a,b\n3,w")  # another source, its last line without a line break
    assert data.ten_times(src).read_text() == "a,b\n" + "3,w\n" * 10


def test_a_later_day_of_history_is_new_orders_months_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "WORK", tmp_path)
    (tmp_path / "next" / "crm").mkdir(parents=True)
    customers = "cst_id,cst_lastname\n" + "".join(f"{n},Lee\n" for n in range(100))
    (tmp_path / "next" / "crm" / "cust_info.csv").write_text(customers)
    (tmp_path / "next" / "crm" / "sales_details.csv").write_text(
        "sls_ord_num,sls_prd_key,sls_cust_id,sls_order_dt,sls_ship_dt,sls_due_dt,sls_sales\n"
        "SO1,P1,7,20241230,20250106,0,10\n"
        "SO2,P2,8,20241105,2024,20241112,20\n"
    )
    assert data.later_day(3)["cust_info"].read_text() == customers  # the same file again
    lines = customers.splitlines(keepends=True)
    day5 = data.later_day(5)["cust_info"].read_text().splitlines(keepends=True)
    changed = [n for n, (a, b) in enumerate(zip(lines, day5, strict=True)) if a != b]
    assert [day5[n] for n in changed] == ["54,Lee-Next\n", "55,Lee-Next\n"]  # 4 and 5 after the next day's 50
    files = data.later_day(4)
    assert files["cust_info"].read_text().count("-Next") == 1  # another 1% each day
    assert files["sales_details"].read_text() == (
        "sls_ord_num,sls_prd_key,sls_cust_id,sls_order_dt,sls_ship_dt,sls_due_dt,sls_sales\n"
        "SO1-4,P1,7,20250228,20250306,0,10\n"  # two months later, the day at most the 28th
        "SO2-4,P2,8,20250105,2024,20250112,20\n"  # what is no date is left as it is
    )


def test_bench_backend_memory_is_none_for_a_process_that_is_no_database() -> None:
    with steps.BackendMemory(os.getpid()) as memory:
        pass
    assert memory.peak_mb is None


def test_bench_database_urls() -> None:
    url = common.db_url("postgresql://postgres@127.0.0.1:54329/warehouse", "bench")
    assert url == "postgresql://postgres@127.0.0.1:54329/bench"
    assert common.libpq("postgres://u@h/db") == "postgresql://u@h/db"


def _shape(dag) -> list[tuple]:  # type: ignore[no-untyped-def]
    """A DAG's graph with the task names left out: per task, its group's depth, trigger
    rule and the (depth, rule) of its upstream and downstream tasks."""

    def node(task) -> tuple:  # type: ignore[no-untyped-def]
        return (task.task_id.count("."), str(task.trigger_rule))

    return sorted(
        (
            node(t),
            sorted(node(u) for u in t.upstream_list),
            sorted(node(d) for d in t.downstream_list),
        )
        for t in dag.tasks
    )


def test_the_parse_floor_is_a_synthetic_clients_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parse bench compares the factory with Airflow's floor "for the same graph":
    the floor's DAG has the tasks, groups, edges and trigger rules of a synthetic
    client's, with and without the client DAGs' settings."""
    from benchmarks.parse import BARE, WITH_SETTINGS, floor_source
    from include.etl.orchestration.factory import build_dag

    data.synthetic_clients(tmp_path, count=1)
    monkeypatch.setattr(config, "SQL_DIR", tmp_path / "sql")
    (client,), errors = load_clients(tmp_path / "clients")
    assert not errors
    built = build_dag(client)
    for settings in (BARE, WITH_SETTINGS):
        floors: dict = {}
        exec(floor_source(1, settings), floors)  # the bench's own generated file
        floor = floors["floor000"]
        assert len(floor.tasks) == len(built.tasks) == 48
        assert _shape(floor) == _shape(built)
        assert {type(t).__name__ for t in floor.tasks} == {"EmptyOperator"}
    assert floor.schedule == built.schedule and floor.default_args == built.default_args
