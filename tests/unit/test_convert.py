"""Conversion of delivered files (CSV, XLSX, JSON) to Parquet: every value text, exactly as
delivered, empty -> NULL; failures are ConvertError naming the file and leave nothing behind."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.etl.config import SourceFile
from include.etl.ingest.convert import ROW_GROUP_ROWS, ConvertError, convert_to_parquet


def spec(file_type: str = "csv", **reader: object) -> SourceFile:
    return SourceFile.model_validate(
        {
            "name": "f",
            "pattern": r".*",
            "type": file_type,
            "reader": reader,
            "bronze_table": "f",
            "columns": [{"source": "id"}],
        }
    )


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def convert(src: Path, the_spec: SourceFile) -> tuple[pa.Table, Path]:
    dest = src.parent / "out" / (src.stem + ".parquet")
    result = convert_to_parquet(src, dest, the_spec)
    table = pq.read_table(dest)
    assert result.rows == table.num_rows
    assert result.columns == table.schema.names
    return table, dest


def assert_all_strings(table: pa.Table) -> None:
    assert all(field.type == pa.string() for field in table.schema), table.schema


def folder_is_empty(folder: Path) -> bool:
    return not folder.exists() or os.listdir(folder) == []


# ------------------------------------------------------------------ CSV
def test_csv_values_exactly_as_delivered(tmp_path: Path) -> None:
    src = write_bytes(
        tmp_path / "a.csv",
        b"id,name,amount,note\n"
        b"1, Alice ,10.50,\n"
        b'2,"Smith, John",0042,"said ""hi"""\n'
        b'3,,  ,"two\nlines"\n'
        b"4,NULL,NA,\\N\n",
    )
    table, _ = convert(src, spec())
    assert table.schema.names == ["id", "name", "amount", "note"]
    assert_all_strings(table)
    assert table.to_pylist() == [
        {"id": "1", "name": " Alice ", "amount": "10.50", "note": None},
        {"id": "2", "name": "Smith, John", "amount": "0042", "note": 'said "hi"'},
        {"id": "3", "name": None, "amount": "  ", "note": "two\nlines"},
        {"id": "4", "name": "NULL", "amount": "NA", "note": "\\N"},
    ]


def test_csv_crlf_line_endings(tmp_path: Path) -> None:
    src = write_bytes(tmp_path / "a.csv", b"id,name\r\n1,a\r\n2,b\r\n")
    table, _ = convert(src, spec())
    assert table.to_pylist() == [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]


def test_csv_semicolon_and_latin1(tmp_path: Path) -> None:
    text = "PlanCode;Plan Name;Monthly Price\nP1;Café Crème;9,99\nP2;Müller, Straße;\n"
    src = write_bytes(tmp_path / "plans.csv", text.encode("latin-1"))
    table, _ = convert(src, spec(delimiter=";", encoding="latin-1"))
    assert table.schema.names == ["PlanCode", "Plan Name", "Monthly Price"]
    assert table.to_pylist() == [
        {"PlanCode": "P1", "Plan Name": "Café Crème", "Monthly Price": "9,99"},
        {"PlanCode": "P2", "Plan Name": "Müller, Straße", "Monthly Price": None},
    ]


def test_csv_utf8_bom_is_stripped_from_the_first_header(tmp_path: Path) -> None:
    src = write_bytes(tmp_path / "a.csv", "\ufeffid,name\n1,Zoë\n".encode())
    table, _ = convert(src, spec())
    assert table.schema.names == ["id", "name"]
    assert table.to_pylist() == [{"id": "1", "name": "Zoë"}]


def test_csv_header_only_gives_zero_rows_with_the_columns(tmp_path: Path) -> None:
    src = write_bytes(tmp_path / "a.csv", b"id,name,amount\n")
    table, _ = convert(src, spec())
    assert table.num_rows == 0
    assert table.schema.names == ["id", "name", "amount"]
    assert_all_strings(table)


def test_csv_zero_byte_file(tmp_path: Path) -> None:
    src = write_bytes(tmp_path / "cust_info_BATCH000001.csv", b"")
    dest = tmp_path / "out" / "cust_info_BATCH000001.parquet"
    with pytest.raises(ConvertError, match=r"^cust_info_BATCH000001\.csv: the file is empty"):
        convert_to_parquet(src, dest, spec())
    assert folder_is_empty(dest.parent)


def test_csv_duplicate_header(tmp_path: Path) -> None:
    src = write_bytes(tmp_path / "dup.csv", b"id,name,id\n1,a,2\n")
    with pytest.raises(ConvertError, match=r"^dup\.csv: duplicate column names"):
        convert_to_parquet(src, tmp_path / "out" / "dup.parquet", spec())


def test_csv_wrong_encoding(tmp_path: Path) -> None:
    src = write_bytes(tmp_path / "enc.csv", "id,name\n1,Café\n".encode("latin-1"))
    with pytest.raises(ConvertError, match=r"^enc\.csv: cannot be read as CSV"):
        convert_to_parquet(src, tmp_path / "out" / "enc.parquet", spec())
    assert folder_is_empty(tmp_path / "out")


def test_csv_more_rows_than_one_row_group(tmp_path: Path) -> None:
    rows = 2 * ROW_GROUP_ROWS + 100_000
    src = tmp_path / "big.csv"
    with open(src, "w", encoding="utf-8") as handle:
        handle.write("id,flag\n")
        handle.writelines(f"{i},x\n" for i in range(1, rows + 1))
    dest = tmp_path / "out" / "big.parquet"
    result = convert_to_parquet(src, dest, spec())
    assert result.rows == rows
    metadata = pq.ParquetFile(dest).metadata
    assert metadata.num_rows == rows
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert len(groups) >= 2
    assert all(n >= ROW_GROUP_ROWS for n in groups[:-1]), groups
    ids = pq.read_table(dest, columns=["id"]).column("id")
    assert ids[0].as_py() == "1"
    assert ids[rows - 1].as_py() == str(rows)
    assert os.listdir(dest.parent) == ["big.parquet"]


def test_csv_embedded_newlines_across_read_blocks(tmp_path: Path) -> None:
    # About 2.3 MB: several 1 MiB read blocks. Most line breaks are inside quotes, so a block
    # boundary cut at the last line break falls inside a quoted value.
    rows, note = 20_000, "line\n" * 20
    src = tmp_path / "notes.csv"
    with open(src, "w", encoding="utf-8", newline="") as handle:
        handle.write("id,note\n")
        handle.writelines(f'{i},"{note}end, {i}"\n' for i in range(rows))
    table, _ = convert(src, spec())
    assert table.num_rows == rows
    assert table.column("note")[rows - 1].as_py() == f"{note}end, {rows - 1}"


def test_csv_header_with_a_quoted_line_break(tmp_path: Path) -> None:
    src = write_bytes(tmp_path / "a.csv", b'"id\nnumber",name\n1,a\n')
    table, _ = convert(src, spec())
    assert table.to_pylist() == [{"id\nnumber": "1", "name": "a"}]


def test_csv_ragged_row_fails_and_leaves_no_temp_file(tmp_path: Path) -> None:
    lines = ["id,name"] + [f"{i},n{i}" for i in range(200_000)] + ["bad row with,too,many,fields"]
    src = write_bytes(tmp_path / "ragged.csv", ("\n".join(lines) + "\n").encode())
    out = tmp_path / "out"
    message = r"^ragged\.csv: line 200002 has 4 fields, the header has 2: 'bad row with,too,many,fields'$"
    with pytest.raises(ConvertError, match=message):
        convert_to_parquet(src, out / "ragged.parquet", spec())
    assert folder_is_empty(out)  # neither the Parquet nor its .tmp


def test_failed_conversion_keeps_an_earlier_parquet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = write_bytes(tmp_path / "good.csv", b"id\n1\n")
    convert_to_parquet(good, out / "x.parquet", spec())
    bad = write_bytes(tmp_path / "bad.csv", b"id\n1\n2,3\n")
    with pytest.raises(ConvertError):
        convert_to_parquet(bad, out / "x.parquet", spec())
    assert os.listdir(out) == ["x.parquet"]
    assert pq.read_table(out / "x.parquet").to_pylist() == [{"id": "1"}]


def test_csv_is_hashed_as_it_is_read(tmp_path: Path) -> None:
    # Several read blocks, a BOM and Latin-1: the hash is of the bytes as delivered.
    text = "\ufeffid;name\n" + "".join(f"{i};Café {i}\n" for i in range(100_000))
    src = write_bytes(tmp_path / "plans.csv", text.encode("utf-8"))
    result = convert_to_parquet(src, tmp_path / "out" / "plans.parquet", spec(delimiter=";"))
    assert result.rows == 100_000
    assert result.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    latin = write_bytes(tmp_path / "latin.csv", "id;name\n1;Café\n".encode("latin-1"))
    result = convert_to_parquet(
        latin, tmp_path / "out" / "latin.parquet", spec(delimiter=";", encoding="latin-1")
    )
    assert result.sha256 == hashlib.sha256(latin.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b'id,name\n1,"a\n2,b\n', 2),
        (b'id,id\n1,"a\n', 2),  # a duplicate header too
        (b"id,name\n1,a,extra\n" + b'2,"b\n3,c\n', 3),  # a ragged row before it
        (b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(100_000)) + b'x,"y\n', 100_002),
    ],
    ids=["alone", "duplicate-header", "ragged-row-before", "after-many-blocks"],
)
def test_csv_unclosed_quote_is_the_reason_given(tmp_path: Path, data: bytes, line: int) -> None:
    # Counted while the file is read, checked once reading is over: whatever else went
    # wrong, the unclosed quote is the reason given, as when it was checked first.
    src = write_bytes(tmp_path / "q.csv", data)
    message = rf"^q\.csv: unbalanced quotes: the quoted value opened on line {line} is never closed"
    with pytest.raises(ConvertError, match=message):
        convert_to_parquet(src, tmp_path / "out" / "q.parquet", spec())
    assert folder_is_empty(tmp_path / "out")


# ------------------------------------------------------------------ XLSX
def write_workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


INVOICE_ROWS: list[list[object]] = [
    ["Invoices export"],  # a title block above the header
    ["generated 2026-01-31"],
    ["Invoice No", "Seats", "Amount", "Invoice Date", "Paid At", "Auto Renew", "Note"],
    ["INV-1", 5, 99.5, dt.date(2024, 1, 15), dt.datetime(2024, 1, 15, 10, 30), True, " kept "],
    ["INV-2", 3.0, 100.0, dt.date(2024, 2, 29), dt.datetime(2024, 2, 1, 8, 0, 5), False, None],
    [None, None, None, None, None, None, None],  # a blank row is skipped
    ["INV-3", None, -0.25, "2024-03-01", None, None, "text"],
]


def test_xlsx_sheet_header_row_and_cell_types(tmp_path: Path) -> None:
    src = write_workbook(
        tmp_path / "invoices.xlsx", {"Cover": [["not this sheet"]], "Invoices": INVOICE_ROWS}
    )
    table, _ = convert(src, spec("xlsx", sheet="Invoices", header_row=3))
    assert table.schema.names == [
        "Invoice No",
        "Seats",
        "Amount",
        "Invoice Date",
        "Paid At",
        "Auto Renew",
        "Note",
        "dwh_row_number",
    ]
    assert_all_strings(table)
    rows = table.to_pylist()
    # The sheet row of each data row: the header is on row 3, row 6 is blank.
    assert [r.pop("dwh_row_number") for r in rows] == ["4", "5", "7"]
    assert rows == [
        {
            "Invoice No": "INV-1",
            "Seats": "5",
            "Amount": "99.5",
            "Invoice Date": "2024-01-15",
            "Paid At": "2024-01-15 10:30:00",
            "Auto Renew": "true",
            "Note": " kept ",
        },
        {
            "Invoice No": "INV-2",
            "Seats": "3",  # a whole float is written without ".0"
            "Amount": "100",
            "Invoice Date": "2024-02-29",
            "Paid At": "2024-02-01 08:00:05",
            "Auto Renew": "false",
            "Note": None,
        },
        {
            "Invoice No": "INV-3",
            "Seats": None,
            "Amount": "-0.25",
            "Invoice Date": "2024-03-01",
            "Paid At": None,
            "Auto Renew": None,
            "Note": "text",
        },
    ]


def test_xlsx_first_sheet_by_default(tmp_path: Path) -> None:
    src = write_workbook(tmp_path / "a.xlsx", {"First": [["id", "n"], [1, "a"]], "Second": [["x"], [2]]})
    table, _ = convert(src, spec("xlsx"))
    assert table.to_pylist() == [{"id": "1", "n": "a", "dwh_row_number": "2"}]


def test_xlsx_trailing_empty_header_cells_are_dropped(tmp_path: Path) -> None:
    src = write_workbook(tmp_path / "a.xlsx", {"S": [["id", "n", None, None], [1, "a"], [2, "b", None, "z"]]})
    table, _ = convert(src, spec("xlsx"))
    assert table.schema.names == ["id", "n", "dwh_row_number"]
    assert table.to_pylist() == [
        {"id": "1", "n": "a", "dwh_row_number": "2"},
        {"id": "2", "n": "b", "dwh_row_number": "3"},
    ]


def test_xlsx_wrong_sheet_names_the_sheets(tmp_path: Path) -> None:
    src = write_workbook(tmp_path / "inv.xlsx", {"Cover": [["x"]], "Data": [["id"], [1]]})
    with pytest.raises(ConvertError) as info:
        convert_to_parquet(src, tmp_path / "out" / "inv.parquet", spec("xlsx", sheet="Invoices"))
    message = str(info.value)
    assert message.startswith("inv.xlsx: no sheet named 'Invoices'")
    assert "(sheets: Cover, Data)" in message
    assert folder_is_empty(tmp_path / "out")


def test_xlsx_without_a_header_row(tmp_path: Path) -> None:
    src = write_workbook(tmp_path / "inv.xlsx", {"S": [["title"]]})
    with pytest.raises(ConvertError, match=r"inv\.xlsx: sheet 'S' has no header in row 3"):
        convert_to_parquet(src, tmp_path / "out" / "inv.parquet", spec("xlsx", header_row=3))


def test_xlsx_not_a_workbook(tmp_path: Path) -> None:
    src = write_bytes(tmp_path / "fake.xlsx", b"id,name\n1,a\n")
    with pytest.raises(ConvertError, match=r"^fake\.xlsx: cannot be read as XLSX"):
        convert_to_parquet(src, tmp_path / "out" / "fake.parquet", spec("xlsx"))
    assert folder_is_empty(tmp_path / "out")


def test_xlsx_header_only_gives_zero_rows(tmp_path: Path) -> None:
    src = write_workbook(tmp_path / "a.xlsx", {"S": [["id", "name"]]})
    table, _ = convert(src, spec("xlsx"))
    assert table.num_rows == 0
    assert table.schema.names == ["id", "name", "dwh_row_number"]


def test_xlsx_duplicate_header_is_a_convert_error(tmp_path: Path) -> None:
    src = write_workbook(tmp_path / "dup.xlsx", {"S": [["id", "Amount", "Amount"], [1, 2, 3]]})
    with pytest.raises(ConvertError, match="duplicate column names"):
        convert_to_parquet(src, tmp_path / "out" / "dup.parquet", spec("xlsx"))


# ------------------------------------------------------------------ JSON
RECORDS = [
    {"id": 1, "name": "Alice", "meta": {"tier": "gold", "tags": ["a", "b"]}, "active": True, "score": 1.5},
    {"id": 2, "name": None, "meta": [], "active": False, "score": 2.0},
    {"id": "3", "name": "", "active": None, "score": 0},  # "meta" absent
]
EXPECTED = [
    {
        "id": "1",
        "name": "Alice",
        "meta": '{"tier": "gold", "tags": ["a", "b"]}',
        "active": "true",
        "score": "1.5",
    },
    {"id": "2", "name": None, "meta": "[]", "active": "false", "score": "2"},
    {"id": "3", "name": None, "meta": None, "active": None, "score": "0"},
]


@pytest.mark.parametrize("layout", ["array", "auto"])
def test_json_array(tmp_path: Path, layout: str) -> None:
    src = write_bytes(tmp_path / "accounts.json", ("  \n" + json.dumps(RECORDS, indent=2)).encode())
    table, _ = convert(src, spec("json", json_records=layout))
    assert table.schema.names == ["id", "name", "meta", "active", "score"]
    assert_all_strings(table)
    assert table.to_pylist() == EXPECTED


@pytest.mark.parametrize("layout", ["lines", "auto"])
def test_json_lines(tmp_path: Path, layout: str) -> None:
    text = "\n".join(json.dumps(r) for r in RECORDS[:2]) + "\n\n" + json.dumps(RECORDS[2]) + "\n"
    src = write_bytes(tmp_path / "events.jsonl", text.encode())
    table, _ = convert(src, spec("json", json_records=layout))
    assert table.to_pylist() == EXPECTED


def test_json_keeps_unicode_and_ignores_keys_not_in_the_first_record(tmp_path: Path) -> None:
    records = [{"id": 1, "city": "Zürich"}, {"id": 2, "city": "Kraków", "extra": "ignored"}]
    src = write_bytes(tmp_path / "a.json", json.dumps(records, ensure_ascii=False).encode())
    table, _ = convert(src, spec("json"))
    assert table.to_pylist() == [{"id": "1", "city": "Zürich"}, {"id": "2", "city": "Kraków"}]


@pytest.mark.parametrize(
    ("name", "content", "layout", "expected"),
    [
        ("broken.json", b'[{"id": 1},', "array", r"^broken\.json: cannot be read as JSON"),
        ("broken.jsonl", b'{"id": 1}\n{"id": \n', "lines", r"^broken\.jsonl: line 2 is not valid JSON: "),
        ("object.json", b'{"id": 1, "name": "x"}', "array", r"^object\.json: holds JSON objects one after"),
        ("number.json", b"42", "array", r"^number\.json: expected a JSON array"),
        ("scalars.json", b"[1, 2]", "array", r"^scalars\.json: record 1 is not a JSON object"),
        ("empty.json", b"", "auto", r"^empty\.json: the JSON holds no records"),
        ("emptyarray.json", b"[]", "auto", r"^emptyarray\.json: the JSON holds no records"),
    ],
)
def test_json_errors(tmp_path: Path, name: str, content: bytes, layout: str, expected: str) -> None:
    src = write_bytes(tmp_path / name, content)
    out = tmp_path / "out"
    with pytest.raises(ConvertError, match=expected):
        convert_to_parquet(src, out / "x.parquet", spec("json", json_records=layout))
    assert folder_is_empty(out)


def test_json_failure_after_many_records_leaves_no_temp_file(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "v": "x"}) for i in range(150_000)] + ["{not json"]
    src = write_bytes(tmp_path / "big.jsonl", ("\n".join(lines) + "\n").encode())
    out = tmp_path / "out"
    with pytest.raises(ConvertError, match=r"^big\.jsonl: line 150001 is not valid JSON"):
        convert_to_parquet(src, out / "big.parquet", spec("json", json_records="lines"))
    assert folder_is_empty(out)


def test_json_columns_come_from_the_config_not_only_the_first_record(tmp_path: Path) -> None:
    from include.etl.config import Column, SourceFile

    spec = SourceFile(
        name="events",
        pattern=r"events\.jsonl",
        type="json",
        bronze_table="events",
        columns=[Column(source="id"), Column(source="note")],
    )
    src = tmp_path / "events.jsonl"
    src.write_text('{"id": "1"}\n{"id": "2", "note": "x"}\n')
    dest = tmp_path / "events.parquet"
    convert_to_parquet(src, dest, spec)
    assert pq.read_table(dest).to_pylist() == [{"id": "1", "note": None}, {"id": "2", "note": "x"}]
