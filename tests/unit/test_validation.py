"""Validation: value rules per type, row validation of a Parquet file, reject policy, mapping."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from include.etl.config import Column, SourceFile
from include.etl.ingest.validation import (
    INTEGER,
    NUMERIC,
    Reject,
    RowResult,
    _strftime,
    check_mapping,
    check_values,
    pg_type,
    pg_values,
    validate_rows,
)


def run(values: list[str | None], **column: object) -> tuple[list[bool], list[str | None]]:
    valid, normalised = check_values(pa.array(values, pa.string()), Column(source="v", **column))
    return valid.to_pylist(), normalised.to_pylist()


def source_file(columns: list[dict], key_columns: list[str] | None = None, **policy: object) -> SourceFile:
    return SourceFile.model_validate(
        {
            "name": "f",
            "pattern": r".*",
            "type": "csv",
            "bronze_table": "f",
            "key_columns": key_columns or [],
            "reject_policy": policy,
            "columns": columns,
        }
    )


def write_parquet(path: Path, rows: dict[str, list[str | None]]) -> Path:
    pq.write_table(pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()}), path)
    return path


# ------------------------------------------------------------------ check_values per type
def test_integer() -> None:
    values = [" 42 ", "42", "-7", "+3", "007", "", None, "4.2", "abc", "1e3", "4 2", "1234567890123456789"]
    valid, normalised = run(values, type="integer")
    assert valid == [True, True, True, True, True, True, True, False, False, False, False, False]
    assert normalised[:7] == ["42", "42", "-7", "+3", "007", None, None]


def test_numeric() -> None:
    values = ["1.5", " .5 ", "10.", "-3", "+0.001", "", "1,5", "1e5", "NaN", "1.2.3", "."]
    valid, normalised = run(values, type="numeric")
    assert valid == [True, True, True, True, True, True, False, False, False, False, False]
    assert normalised[:6] == ["1.5", ".5", "10.", "-3", "+0.001", None]


def test_date_default_format() -> None:
    values = ["2024-02-29", " 2024-01-05 ", "", None, "2024-02-30", "2023-02-29", "2024-13-01"]
    values += ["2024-1-5", "05.01.2024", "2024-01-05 10:00:00", "yesterday"]
    valid, normalised = run(values, type="date")
    assert valid == [True, True, True, True] + [False] * 7
    assert normalised[:4] == ["2024-02-29", "2024-01-05", None, None]
    assert normalised[4:] == [None] * 7


def test_date_custom_format() -> None:
    valid, normalised = run(
        ["05.01.2024", "29.02.2024", "31.02.2024", "2024-01-05", "5.1.2024"], type="date", format="%d.%m.%Y"
    )
    assert valid == [True, True, False, False, False]
    assert normalised == ["2024-01-05", "2024-02-29", None, None, None]


def test_timestamp_with_t_or_space() -> None:
    values = ["2024-01-15T10:30:00", "2024-01-15 10:30:00", " 2024-01-15 10:30 ", "2024-01-15T10:30", ""]
    values += ["2024-01-15", "2024-01-15 25:00:00", "2024-02-30 10:00:00", "15/01/2024 10:30"]
    valid, normalised = run(values, type="timestamp")
    assert valid == [True] * 5 + [False] * 4
    assert normalised[:5] == ["2024-01-15 10:30:00"] * 4 + [None]


def test_timestamp_custom_format() -> None:
    valid, normalised = run(
        ["15/01/2024 10:30", "31/02/2024 10:30", "2024-01-15 10:30:00"],
        type="timestamp",
        format="%d/%m/%Y %H:%M",
    )
    assert valid == [True, False, False]
    assert normalised == ["2024-01-15 10:30:00", None, None]


@pytest.mark.parametrize(
    ("value", "fmt"),
    [("2024-01-15T10:30:00", "%Y-%m-%dT%H:%M:%S"), ("Tue 16 Jan 2024 10:00", "%a %d %b %Y %H:%M")],
    ids=["literal-T", "weekday"],
)
def test_timestamp_custom_format_containing_t(value: str, fmt: str) -> None:
    valid, normalised = run([value], type="timestamp", format=fmt)
    assert valid == [True]
    assert normalised[0] is not None


def test_boolean_spellings() -> None:
    values = ["true", "TRUE", " Yes ", "t", "1", "false", "No", "F", "0", "", None, "y", "2", "on"]
    valid, normalised = run(values, type="boolean")
    assert valid == [True] * 11 + [False] * 3
    assert normalised[:11] == ["true"] * 5 + ["false"] * 4 + [None, None]


def test_text_is_kept_as_delivered() -> None:
    valid, normalised = run([" a ", "", None, "  "])
    assert valid == [True, True, True, True]
    assert normalised == [" a ", "", None, "  "]


@pytest.mark.parametrize("column_type", ["text", "integer", "numeric", "date", "timestamp", "boolean"])
def test_required_empty_is_rejected(column_type: str) -> None:
    good = {
        "text": "x",
        "integer": "1",
        "numeric": "1.5",
        "date": "2024-01-01",
        "timestamp": "2024-01-01 00:00:00",
        "boolean": "true",
    }[column_type]
    valid, _ = run([good, "", "   ", None], type=column_type, required=True)
    assert valid == [True, False, False, False]
    valid, _ = run([good, "", "   ", None], type=column_type, required=False)
    assert valid == [True, True, True, True]


def number_corpus(seed: int, count: int) -> list[str | None]:
    """Strings near the number rules: signs, points, spaces, too many digits, garbage."""
    rng = random.Random(seed)
    alphabet = "0123456789" * 3 + "+-..  x\té"
    values: list[str | None] = [None, "", " ", "+", "-", ".", "+.", "-.5", "5.", ".5", "1.2.3", "0x1F"]
    values += ["9" * 18, "-" + "9" * 18, "+" + "9" * 18, "9" * 19, " 42 ", "4 2", "１２"]
    for _ in range(count):
        length = rng.choice([1, 2, 3, 5, 17, 18, 19, 20]) if rng.random() < 0.3 else rng.randint(1, 6)
        values.append("".join(rng.choice(alphabet) for _ in range(length)))
    return values


def with_bytes_under_nulls(values: list[str | None], seed: int) -> pa.Array:
    """The values as a string array whose NULL slots still hold bytes (Arrow allows it)."""
    rng = random.Random(seed)
    texts = [v or "" for v in values]
    offsets = np.cumsum([0] + [len(t.encode()) for t in texts]).astype(np.int32)
    null = np.array([v is None or rng.random() < 0.2 for v in values])
    validity = pa.array(~null).buffers()[1]
    data = pa.py_buffer("".join(texts).encode())
    return pa.StringArray.from_buffers(
        len(values), pa.py_buffer(offsets.tobytes()), data, validity, int(null.sum())
    )


@pytest.mark.parametrize("column_type", ["integer", "numeric"])
def test_number_checks_are_their_regular_expressions(column_type: str) -> None:
    """The number checks read bytes, not the regular expressions that define them: the
    same values must pass, whatever the array's layout (sliced, bytes under NULLs)."""
    pattern = INTEGER if column_type == "integer" else NUMERIC
    column = Column(source="v", type=column_type)
    values = number_corpus(seed=7, count=5000)
    for array in (pa.array(values, pa.string()), pa.array(values, pa.string()).slice(3, 4000)):
        for case in (array, with_bytes_under_nulls(array.to_pylist(), seed=3)):
            trimmed = pc.utf8_trim_whitespace(case)
            expected = pc.or_(
                pc.or_(pc.is_null(case), pc.equal(trimmed, "")),
                pc.fill_null(pc.match_substring_regex(trimmed, pattern), False),
            )
            valid, _ = check_values(case, column)
            assert valid.to_pylist() == pc.fill_null(expected, True).to_pylist()


class Collect:
    """A typed sink that keeps what validate_rows sends it."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[pa.Array], list[pa.DataType], np.ndarray]] = []
        self.failed: str | None = None

    def write(self, columns, types, numbers) -> None:
        self.batches.append((columns, types, numbers))

    def fail(self, reason: str) -> None:
        self.failed = reason

    def table(self, names: list[str]) -> pa.Table:
        columns = [pa.chunked_array([b[0][i] for b in self.batches]) for i in range(len(names))]
        numbers = np.concatenate([b[2] for b in self.batches])
        return pa.table([*columns, pa.array(numbers)], names=[*names, "row"])


TYPED_COLUMNS = [
    {"source": "id", "type": "integer", "required": True},
    {"source": "name", "required": True},
    {"source": "price", "type": "numeric"},
    {"source": "due", "type": "date", "format": "%d.%m.%Y"},
    {"source": "seen", "type": "timestamp"},
    {"source": "ok", "type": "boolean"},
]
TYPED_ROWS = {
    "id": ["1", "x", " +3 ", "4", "-5", "6", "7", "8"],
    "name": ["a", "b", "c", None, "e", " f ", "g", "h"],
    "price": ["1.50", "2.00", " -0.25 ", "1.00", "", "3.10", ".75", "9.99"],
    "due": ["05.01.2024", "31.02.2024", "", "01.01.2024", "29.02.2024", None, "31.12.1969", "01.03.2024"],
    "seen": ["2024-01-02T03:04", "", "2024-01-02 03:04:05", None, "2024-13-01 00:00:00", "", "", ""],
    "ok": ["Yes", "0", " t ", "no", "", "TRUE", "f", None],
}


@pytest.mark.parametrize("batch_rows", [3, 1024])
def test_validate_rows_sends_the_accepted_rows_typed(tmp_path: Path, batch_rows: int) -> None:
    """What validation sends the bronze load is pg_values of the accepted rows, row numbers included."""
    parquet = write_parquet(tmp_path / "f.parquet", TYPED_ROWS)
    spec = source_file(TYPED_COLUMNS, key_columns=["id", "due"], max_ratio=1)
    sink = Collect()
    result = validate_rows(parquet, spec, batch_rows=batch_rows, typed=sink)
    rejected = {r.row_number for r in result.rejects}
    assert rejected == {2, 4, 5}  # id "x"; name missing; month 13
    assert sink.failed is None
    accepted = pa.array([n not in rejected for n in range(1, 9)])
    names = [c.name for c in spec.columns]
    raw = {k: pa.array(v, pa.string()).filter(accepted) for k, v in TYPED_ROWS.items()}
    expected = [pg_values(raw[c.source], c, pg_type(c, raw[c.source])) for c in spec.columns]
    typed = sink.table(names)
    assert typed.column("row").to_pylist() == [1, 3, 6, 7, 8]
    for column, values in zip(spec.columns, expected, strict=True):
        assert typed.column(column.name).combine_chunks().equals(values), column.name
    assert [str(t) for t in sink.batches[0][1]] == [
        "int64",
        "string",
        "decimal128(38, 2)",
        "date32[day]",
        "timestamp[s]",
        "bool",
    ]


def test_values_arrow_cannot_type_end_the_typed_rows_not_the_validation(tmp_path: Path) -> None:
    parquet = write_parquet(tmp_path / "f.parquet", {"price": ["1.5", "2.5", "1.25", "3.75"]})
    sink = Collect()
    result = validate_rows(parquet, source_file([{"source": "price", "type": "numeric"}]), 2, typed=sink)
    assert (result.total, result.rejected) == (4, 0)
    assert "scale" in sink.failed and len(sink.batches) == 1  # the first batch, then no more


def test_an_empty_file_sends_no_typed_row_but_its_types(tmp_path: Path) -> None:
    parquet = write_parquet(tmp_path / "f.parquet", {k: [] for k in TYPED_ROWS})
    sink = Collect()
    validate_rows(parquet, source_file(TYPED_COLUMNS), typed=sink)
    ((columns, types, numbers),) = sink.batches
    assert [len(c) for c in columns] == [0] * 6 and len(numbers) == 0
    assert str(types[2]) == "decimal128(38, 0)"


# ------------------------------------------------------------------ validate_rows
COLUMNS = [
    {"source": "Customer ID", "target": "customer_id", "type": "integer", "required": True},
    {"source": "name", "required": True},
    {"source": "amount", "type": "numeric"},
    {"source": "due", "type": "date", "format": "%d.%m.%Y"},
]
ROWS = {
    #             1     2     3     4       5      6       7      8
    "Customer ID": ["1", "x", "2", "3", "1", " 4 ", "1", "y"],
    "name": ["a", "b", None, "c", "dup", "d", "dup2", " "],
    "amount": ["1.5", "2", "2", "abc", "1", "", "3", "1"],
    "due": ["05.01.2024", "31.02.2024", None, "31.02.2024", None, "", "01.01.2024", None],
    "unmapped": ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"],
}


@pytest.mark.parametrize("batch_rows", [3, 1024])
def test_validate_rows(tmp_path: Path, batch_rows: int) -> None:
    parquet = write_parquet(tmp_path / "f.parquet", ROWS)
    spec = source_file(COLUMNS, key_columns=["customer_id"])
    result = validate_rows(parquet, spec, batch_rows=batch_rows)
    assert result.total == 8
    assert result.rejected == 4
    assert [(r.row_number, r.column, r.reason) for r in result.rejects] == [
        (2, "Customer ID", "Customer ID: not an integer: 'x'"),
        (3, "name", "required value of name is empty"),
        (4, "amount", "amount: not a number: 'abc'"),  # first bad column only; due is bad too
        (8, "Customer ID", "Customer ID: not an integer: 'y'"),
    ]
    assert result.rejects[0].raw == {
        "Customer ID": "x",
        "name": "b",
        "amount": "2",
        "due": "31.02.2024",
        "unmapped": "u2",
    }
    assert result.rejects[1].raw["name"] is None
    # Key 1 is on rows 1, 5 and 7 (two extra); the rejected rows do not count.
    assert result.duplicate_keys == 2
    assert result.over_limit(spec) is not None  # 4 of 8 is far over 5 %


def test_validate_rows_reason_names_the_format(tmp_path: Path) -> None:
    parquet = write_parquet(
        tmp_path / "f.parquet", {"Customer ID": ["1"], "name": ["a"], "amount": ["1"], "due": ["2024-01-05"]}
    )
    result = validate_rows(parquet, source_file(COLUMNS))
    assert [(r.row_number, r.column, r.reason) for r in result.rejects] == [
        (1, "due", "due: not a valid date (%d.%m.%Y): '2024-01-05'")
    ]
    assert result.duplicate_keys == 0


def test_validate_rows_of_an_empty_file(tmp_path: Path) -> None:
    parquet = write_parquet(tmp_path / "f.parquet", {k: [] for k in ROWS})
    result = validate_rows(parquet, source_file(COLUMNS, key_columns=["customer_id"]))
    assert (result.total, result.rejected, result.duplicate_keys) == (0, 0, 0)


def test_duplicate_keys_over_several_columns(tmp_path: Path) -> None:
    parquet = write_parquet(
        tmp_path / "f.parquet",
        {"ord": ["o1", "o1", "o1", "o2", "o1"], "prd": ["p1", "p2", "p1", "p1", "p1"]},
    )
    spec = source_file([{"source": "ord"}, {"source": "prd"}], key_columns=["ord", "prd"])
    assert validate_rows(parquet, spec, batch_rows=2).duplicate_keys == 2


def test_duplicate_keys_compare_normalised_values(tmp_path: Path) -> None:
    parquet = write_parquet(tmp_path / "f.parquet", {"id": ["1", " 1 ", "2"]})
    spec = source_file([{"source": "id", "type": "integer"}], key_columns=["id"])
    assert validate_rows(parquet, spec).duplicate_keys == 1


def test_integer_keys_compare_as_the_numbers_bronze_holds(tmp_path: Path) -> None:
    parquet = write_parquet(tmp_path / "f.parquet", {"id": ["9", "7", "3", "007", "+7", "3", "-3"]})
    spec = source_file([{"source": "id", "type": "integer"}], key_columns=["id"])
    result = validate_rows(parquet, spec, batch_rows=3)
    assert (result.duplicate_keys, result.duplicate_example) == (3, "id=7")  # 7 twice more, 3 once


def test_duplicate_keys_with_nulls_over_an_integer_and_a_text_column(tmp_path: Path) -> None:
    parquet = write_parquet(
        tmp_path / "f.parquet",
        {"n": ["1", "1", "", "", "2", "01"], "t": ["a", "b", "x", "x", "a", "b"]},
    )
    spec = source_file([{"source": "n", "type": "integer"}, {"source": "t"}], key_columns=["n", "t"])
    result = validate_rows(parquet, spec, batch_rows=4)
    # (NULL, x) twice and (1, b) as "1" and "01": two rows repeat an earlier key
    assert (result.duplicate_keys, result.duplicate_example) == (2, "n=1, t=b")


# ------------------------------------------------------------------ reject policy
def result_with(total: int, rejected: int) -> RowResult:
    rejects = [Reject(i, "v", "bad", {}) for i in range(1, rejected + 1)]
    return RowResult(total=total, rejects=rejects)


def test_over_limit_max_rows() -> None:
    spec = source_file([{"source": "v"}], max_rows=2, max_ratio=1)
    assert result_with(100, 2).over_limit(spec) is None
    assert result_with(100, 3).over_limit(spec) == "3 rejected rows exceed the limit of 2"
    zero = source_file([{"source": "v"}], max_rows=0, max_ratio=1)
    assert result_with(100, 1).over_limit(zero) == "1 rejected rows exceed the limit of 0"


def test_over_limit_max_ratio() -> None:
    spec = source_file([{"source": "v"}], max_ratio=0.05)
    assert result_with(100, 0).over_limit(spec) is None
    assert result_with(100, 5).over_limit(spec) is None  # exactly at the limit
    assert result_with(100, 6).over_limit(spec) == "6 of 100 rows rejected (6.0%) exceeds the limit of 5.0%"
    default = source_file([{"source": "v"}])
    assert default.reject_policy.max_ratio == 0.05
    assert result_with(20, 2).over_limit(default) == "2 of 20 rows rejected (10.0%) exceeds the limit of 5.0%"


def test_over_limit_all_rows_rejected() -> None:
    spec = source_file([{"source": "v"}], max_ratio=1)
    assert result_with(3, 3).over_limit(spec) == "all 3 rows rejected"
    assert result_with(3, 2).over_limit(spec) is None
    assert result_with(0, 0).over_limit(spec) is None  # an empty file is not "all rejected"


# ------------------------------------------------------------------ mapping
def test_check_mapping(tmp_path: Path) -> None:
    spec = source_file(
        [{"source": "Customer ID", "target": "customer_id"}, {"source": "name"}, {"source": "amount"}]
    )
    missing = check_mapping(
        write_parquet(tmp_path / "a.parquet", {"Customer ID": [], "name": [], "Extra": []}), spec
    )
    assert missing.missing == ["amount"]
    assert missing.extra == ["Extra"]
    assert not missing.ok
    extra_only = check_mapping(
        write_parquet(tmp_path / "b.parquet", {"amount": [], "name": [], "Customer ID": [], "note": []}), spec
    )
    assert (extra_only.missing, extra_only.extra, extra_only.ok) == ([], ["note"], True)
    # Names are compared exactly: case and spaces matter.
    exact = check_mapping(
        write_parquet(tmp_path / "c.parquet", {"customer id": [], "name ": [], "amount": []}), spec
    )
    assert exact.missing == ["Customer ID", "name"]
    assert exact.extra == ["customer id", "name "]


@pytest.mark.parametrize(
    "fmt",
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d.%m.%Y",
        "%Y%m%d",
        "%m/%d/%Y %H:%M",
        "%Y-%m-%dT%H:%MZ",
        "%b %d %Y",  # through Arrow's own
    ],
)
def test_timestamps_are_written_as_arrows_strftime_writes_them(fmt: str) -> None:
    seconds = np.random.default_rng(7).integers(-30_000_000_000, 250_000_000_000, 5000)  # years 1019-9892
    edges = [0, 86399, 951_782_400, -31_000_000_000]  # 1970, 2000-02-29, 0987-08-25
    values = pa.array(np.append(seconds, edges), pa.timestamp("s"))
    values = pc.if_else(pc.equal(pc.second(values), 13), pa.scalar(None, pa.timestamp("s")), values)
    assert _strftime(values, fmt).to_pylist() == pc.strftime(values, format=fmt).to_pylist()
