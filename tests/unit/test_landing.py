"""The landing store: safe names, claimed names, finding files, atomic moves and writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from include.etl.config import ClientConfig, config_from
from include.etl.ingest.landing import (
    Landing,
    UnsafePathError,
    claimed_batch,
    claimed_name,
    manifest_name,
    move,
    parquet_name,
    safe_child,
    safe_name,
    write_json_atomic,
)

UNSAFE_NAMES = ["", ".", "..", "a/b", "../x.csv", "a\\b", "..\\x.csv", "a\x00b", ".hidden", ".x.csv.tmp"]


def make_config(pattern: str = r"cust_info(_\d{8})?\.csv", required_second: bool = True) -> ClientConfig:
    return config_from(
        {
            "client": "acme",
            "display_name": "Acme",
            "owner": "test",
            "sources": [
                {
                    "name": "crm",
                    "files": [
                        {
                            "name": "cust_info",
                            "pattern": pattern,
                            "type": "csv",
                            "bronze_table": "crm_cust_info",
                            "columns": [{"source": "cst_id"}],
                        },
                        {
                            "name": "prd_info",
                            "pattern": r"prd_info\.csv",
                            "type": "csv",
                            "bronze_table": "crm_prd_info",
                            "required": required_second,
                            "columns": [{"source": "prd_id"}],
                        },
                    ],
                }
            ],
        }
    )


def touch(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ safe names
@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=repr)
def test_safe_name_refuses(name: str) -> None:
    with pytest.raises(UnsafePathError, match="refusing unsafe file name"):
        safe_name(name)


@pytest.mark.parametrize("name", ["cust_info.csv", "CUST_AZ12_BATCH000001.csv", "a..b.csv", "x"])
def test_safe_name_accepts_plain_names(name: str) -> None:
    assert safe_name(name) == name


@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=repr)
def test_safe_child_refuses_unsafe_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_child(tmp_path, name)


def test_safe_child_refuses_symlinks(tmp_path: Path) -> None:
    outside = touch(tmp_path / "outside" / "secret.csv")
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "cust_info.csv").symlink_to(outside)
    (folder / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_child(folder, "cust_info.csv")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_child(folder, "dangling.csv")


def test_safe_child_of_a_plain_or_missing_file(tmp_path: Path) -> None:
    touch(tmp_path / "a.csv")
    assert safe_child(tmp_path, "a.csv") == tmp_path / "a.csv"
    assert safe_child(tmp_path, "not_yet.csv") == tmp_path / "not_yet.csv"


# ------------------------------------------------------------------ claimed names
@pytest.mark.parametrize(
    ("name", "claimed"),
    [
        ("cust_info.csv", "cust_info_BATCH000001.csv"),
        ("cust_info_20240131.csv", "cust_info_20240131_BATCH000001.csv"),
        ("archive.tar.gz", "archive.tar_BATCH000001.gz"),
        ("noextension", "noextension_BATCH000001"),
    ],
)
def test_claimed_name_and_back(name: str, claimed: str) -> None:
    assert claimed_name(name, "BATCH000001") == claimed
    assert claimed_batch(claimed) == "BATCH000001"
    assert claimed_batch(name) is None


def test_claimed_batch() -> None:
    assert claimed_batch("cust_info_BATCH1234567.csv") == "BATCH1234567"
    assert claimed_batch("cust_info_BATCH000042.parquet") == "BATCH000042"
    assert claimed_batch("cust_info_BATCH12345.csv") is None  # fewer than six digits
    assert claimed_batch("cust_infoBATCH000001.csv") is None  # no separator
    assert claimed_batch("cust_info_BATCH000001_x.csv") is None  # not at the end


def test_parquet_name() -> None:
    assert parquet_name("cust_info_BATCH000001.csv") == "cust_info_BATCH000001.parquet"
    assert parquet_name("invoices_BATCH000002.xlsx") == "invoices_BATCH000002.parquet"
    assert parquet_name("events.2024.jsonl") == "events.2024.parquet"
    assert parquet_name("noextension_BATCH000001") == "noextension_BATCH000001.parquet"


def test_manifest_name() -> None:
    assert manifest_name("client1", "BATCH000007") == "batch_output_client1_BATCH000007.json"


# ------------------------------------------------------------------ folders and finding files
def test_folders_and_ensure(tmp_path: Path) -> None:
    landing, cfg = Landing(tmp_path), make_config()
    assert landing.raw("acme", "crm", "incoming") == tmp_path / "raw" / "acme" / "crm" / "incoming"
    assert landing.data("acme", "crm", "archive") == tmp_path / "data" / "acme" / "crm" / "archive"
    assert landing.batch_info("acme", "failed") == tmp_path / "batch_info" / "acme" / "failed"
    with pytest.raises(AssertionError):
        landing.data("acme", "crm", "success")  # Parquet has no success folder
    landing.ensure(cfg)
    for state in ("incoming", "success", "failed", "archive"):
        assert landing.raw("acme", "crm", state).is_dir()
        assert landing.batch_info("acme", state).is_dir()
    for state in ("incoming", "failed", "archive"):
        assert landing.data("acme", "crm", state).is_dir()


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ETL_DATA_ROOT", str(tmp_path / "root"))
    assert Landing.from_env().root == tmp_path / "root"


def test_unclaimed_matches_the_pattern_only(tmp_path: Path) -> None:
    landing, cfg = Landing(tmp_path), make_config()
    _, spec = cfg.file("cust_info")
    assert landing.unclaimed(cfg, "crm", spec) == []  # no folder yet
    incoming = landing.raw("acme", "crm", "incoming")
    for name in (
        "cust_info_20240102.csv",
        "cust_info.csv",
        "cust_info_BATCH000001.csv",  # already claimed by a batch
        ".cust_info.csv",  # dotfile (a delivery in progress)
        "cust_info.csv.part",
        "old_cust_info.csv",
        "prd_info.csv",
    ):
        touch(incoming / name)
    (incoming / "cust_info_20240103.csv").symlink_to(touch(tmp_path / "elsewhere.csv"))
    (incoming / "cust_info_20240104.csv").mkdir()  # a folder, not a file
    found = landing.unclaimed(cfg, "crm", spec)
    assert [p.name for p in found] == ["cust_info.csv", "cust_info_20240102.csv"]
    assert all(p.parent == incoming for p in found)


def test_unclaimed_ignores_claimed_names_even_when_the_pattern_matches(tmp_path: Path) -> None:
    landing, cfg = Landing(tmp_path), make_config(pattern=r"cust_info.*\.csv")
    _, spec = cfg.file("cust_info")
    incoming = landing.raw("acme", "crm", "incoming")
    touch(incoming / "cust_info_BATCH000001.csv")
    touch(incoming / "cust_info_BATCH000002.csv")
    assert spec.matches("cust_info_BATCH000001.csv")
    assert landing.unclaimed(cfg, "crm", spec) == []
    touch(incoming / "cust_info_new.csv")
    assert [p.name for p in landing.unclaimed(cfg, "crm", spec)] == ["cust_info_new.csv"]


def test_missing_required(tmp_path: Path) -> None:
    landing = Landing(tmp_path)
    cfg = make_config()
    assert landing.missing_required(cfg) == ["crm/cust_info", "crm/prd_info"]
    incoming = landing.raw("acme", "crm", "incoming")
    touch(incoming / "cust_info.csv")
    touch(incoming / "prd_info_BATCH000001.csv")  # claimed: does not count
    assert landing.missing_required(cfg) == ["crm/prd_info"]
    assert landing.missing_required(make_config(required_second=False)) == []
    touch(incoming / "prd_info.csv")
    assert landing.missing_required(cfg) == []


@pytest.mark.parametrize("state", ["incoming", "success", "failed", "archive"])
def test_locate_raw_finds_a_file_in_any_state(tmp_path: Path, state: str) -> None:
    landing = Landing(tmp_path)
    path = touch(landing.raw("acme", "crm", state) / "cust_info_BATCH000001.csv")
    assert landing.locate_raw("acme", "crm", "cust_info_BATCH000001.csv") == path
    assert landing.locate_raw("acme", "crm", "cust_info_BATCH000002.csv") is None
    assert landing.locate_raw("acme", "erp", "cust_info_BATCH000001.csv") is None


def test_locate_refuses_unsafe_names_and_links(tmp_path: Path) -> None:
    landing = Landing(tmp_path)
    touch(landing.raw("acme", "crm", "incoming") / "x.csv")
    with pytest.raises(UnsafePathError):
        landing.locate_raw("acme", "crm", "../incoming/x.csv")
    target = touch(tmp_path / "secret.csv")
    success = landing.raw("acme", "crm", "success")
    success.mkdir(parents=True)
    (success / "link.csv").symlink_to(target)
    with pytest.raises(UnsafePathError):
        landing.locate_raw("acme", "crm", "link.csv")


def test_locate_parquet_and_manifest(tmp_path: Path) -> None:
    landing = Landing(tmp_path)
    parquet = touch(landing.data("acme", "crm", "archive") / "cust_info_BATCH000001.parquet")
    assert landing.locate_parquet("acme", "crm", parquet.name) == parquet
    manifest = touch(landing.batch_info("acme", "failed") / manifest_name("acme", "BATCH000001"), "{}")
    assert landing.locate_manifest("acme", "BATCH000001") == manifest
    assert landing.locate_manifest("acme", "BATCH000002") is None


# ------------------------------------------------------------------ moves and writes
def test_move_renames_into_the_folder(tmp_path: Path) -> None:
    source = touch(tmp_path / "incoming" / "a.csv", "content\n")
    inode = source.stat().st_ino
    target = move(source, tmp_path / "archive" / "nested")  # creates the folder
    assert target == tmp_path / "archive" / "nested" / "a.csv"
    assert not source.exists()
    assert target.read_text() == "content\n"
    assert target.stat().st_ino == inode  # a rename, not a copy


def test_move_is_a_no_op_when_already_there(tmp_path: Path) -> None:
    path = touch(tmp_path / "archive" / "a.csv", "content\n")
    assert move(path, tmp_path / "archive") == path
    assert path.read_text() == "content\n"
    assert os.listdir(tmp_path / "archive") == ["a.csv"]


def test_move_replaces_a_stale_copy(tmp_path: Path) -> None:
    source = touch(tmp_path / "incoming" / "a.csv", "new\n")
    touch(tmp_path / "success" / "a.csv", "old\n")
    target = move(source, tmp_path / "success")
    assert target.read_text() == "new\n"
    assert os.listdir(tmp_path / "success") == ["a.csv"]


def test_write_json_atomic(tmp_path: Path) -> None:
    path = tmp_path / "batch_info" / "manifest.json"
    write_json_atomic(path, {"status": "RUNNING", "files": [1, 2]})
    assert json.loads(path.read_text()) == {"status": "RUNNING", "files": [1, 2]}
    write_json_atomic(path, {"status": "SUCCESS"})
    assert json.loads(path.read_text()) == {"status": "SUCCESS"}
    assert os.listdir(path.parent) == ["manifest.json"]  # no temporary file left


def test_write_json_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    write_json_atomic(path, {"status": "RUNNING"})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"status": object()})  # not JSON serialisable
    assert json.loads(path.read_text()) == {"status": "RUNNING"}
    assert os.listdir(tmp_path) == ["manifest.json"]
