"""The landing store: the filesystem contract every client shares.

    raw/{client}/{system}/{incoming,success,failed,archive}     files as delivered
    data/{client}/{system}/{incoming,failed,archive}            Parquet
    batch_info/{client}/{incoming,success,failed,archive}       batch manifests

Row validation also writes a converted file's accepted rows, typed for the bronze load,
into ``data/.../incoming`` (``typed_name``: an Arrow IPC file). The load removes it once
the rows are in bronze; closing the batch removes any left over. It is derived data: a
re-run of validation writes it again, and a load without it types the rows itself.

All under one root (``ETL_DATA_ROOT``). A file is *claimed* by a batch by renaming it
with the batch suffix (``cust_info.csv`` -> ``cust_info_BATCH000001.csv``); every later
move keeps that name, so a step finds its input in whichever state folder it is in,
which is what makes every task safe to clear and re-run. Moves are ``os.replace`` within
one filesystem: atomic, and re-runnable after a crash between two moves.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from include.etl.config import PROJECT_DIR, ClientConfig, SourceFile

# Folder names, in the order a step looks for its input: a file put back into incoming
# wins, and a stale copy left in failed is the last resort.
RAW_STATES = ("incoming", "success", "archive", "failed")
DATA_STATES = ("incoming", "archive", "failed")
MANIFEST_STATES = ("incoming", "success", "failed", "archive")
CLAIMED = re.compile(r"_(BATCH\d{6,})(\.[^.]*)?$")
DATE_STAMP = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")
DEFAULT_ROOT = PROJECT_DIR / ".local" / "landing"


class UnsafePathError(ValueError):
    """A file name that could escape its folder (``..``, a separator, a link)."""


def safe_name(name: str) -> str:
    """Return ``name`` if it is a plain file name, else raise UnsafePathError."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)
        or name.startswith(".")
    ):
        raise UnsafePathError(f"refusing unsafe file name {name!r}")
    return name


def safe_child(folder: Path, name: str) -> Path:
    """``folder/name``, refusing names and links that would leave ``folder``."""
    path = folder / safe_name(name)
    if path.is_symlink():
        raise UnsafePathError(f"refusing symbolic link {path}")
    return path


def claimed_name(file_name: str, batch_id: str) -> str:
    """The name a file is claimed under: ``cust_info.csv`` -> ``cust_info_BATCH000001.csv``."""
    stem, dot, ext = file_name.rpartition(".")
    return f"{stem}_{batch_id}.{ext}" if dot else f"{file_name}_{batch_id}"


def claimed_batch(file_name: str) -> str | None:
    """The batch a claimed file name carries (``BATCH000001``), None if unclaimed."""
    match = CLAIMED.search(file_name)
    return match.group(1) if match else None


def unclaimed_name(file_name: str) -> str:
    """The name a claimed file was delivered under (the batch suffix removed)."""
    return CLAIMED.sub(lambda m: m.group(2) or "", file_name)


def delivery_date(file_name: str) -> date | None:
    """The day a file was delivered for: the last ``YYYYMMDD`` stamp in its name that is a
    real date (``sales_details_20260105.csv`` -> 2026-01-05), else None (undated)."""
    for year, month, day in reversed(DATE_STAMP.findall(unclaimed_name(file_name))):
        try:
            return date(int(year), int(month), int(day))
        except ValueError:
            continue
    return None


def parquet_name(physical_file_name: str) -> str:
    """The Parquet name of a claimed file: its stem with ``.parquet``."""
    stem, dot, _ = physical_file_name.rpartition(".")
    return f"{stem if dot else physical_file_name}.parquet"


def typed_name(parquet_name: str) -> str:
    """The typed rows of a converted file: ``x_BATCH000001.parquet`` -> ``x_BATCH000001.bronze.arrow``.

    A converted file's name ends in its batch suffix, so none is named like a typed one."""
    stem, dot, _ = parquet_name.rpartition(".")
    return f"{stem if dot else parquet_name}.bronze.arrow"


def partial_path(path: Path) -> Path:
    """Where a file is written before it is renamed to ``path`` (hidden: never a delivery)."""
    return path.with_name(f".{path.name}.tmp")


@dataclass(frozen=True)
class Landing:
    """The filesystem contract under one root: raw files, Parquet and manifests, each in
    ``incoming`` / ``success`` / ``failed`` / ``archive`` folders per client and system.
    """

    root: Path

    @classmethod
    def from_env(cls) -> Landing:
        """The landing root of ``ETL_DATA_ROOT`` (default ``.local/landing``)."""
        return cls(Path(os.environ.get("ETL_DATA_ROOT", DEFAULT_ROOT)))

    def raw(self, client: str, system: str, state: str) -> Path:
        """``raw/<client>/<system>/<state>``: files as delivered."""
        assert state in RAW_STATES, state
        return self.root / "raw" / client / system / state

    def data(self, client: str, system: str, state: str) -> Path:
        """``data/<client>/<system>/<state>``: their Parquet."""
        assert state in DATA_STATES, state
        return self.root / "data" / client / system / state

    def typed(self, client: str, system: str, parquet_name: str) -> Path:
        """The typed rows (see ``typed_name``) of a converted file, in ``data/.../incoming``."""
        return safe_child(self.data(client, system, "incoming"), typed_name(parquet_name))

    def drop_typed(self, client: str, system: str, parquet_name: str) -> None:
        """Remove a converted file's typed rows, and any partial write of them."""
        path = self.typed(client, system, parquet_name)
        for leftover in (path, partial_path(path)):
            leftover.unlink(missing_ok=True)

    def batch_info(self, client: str, state: str) -> Path:
        """``batch_info/<client>/<state>``: the manifests."""
        assert state in MANIFEST_STATES, state
        return self.root / "batch_info" / client / state

    def ensure(self, cfg: ClientConfig) -> None:
        """Create every folder of the client's contract."""
        for system in cfg.sources:
            for state in RAW_STATES:
                self.raw(cfg.client, system.name, state).mkdir(parents=True, exist_ok=True)
            for state in DATA_STATES:
                self.data(cfg.client, system.name, state).mkdir(parents=True, exist_ok=True)
        for state in MANIFEST_STATES:
            self.batch_info(cfg.client, state).mkdir(parents=True, exist_ok=True)

    # -------------------------------------------------------------- finding files
    def unclaimed(
        self,
        cfg: ClientConfig,
        system: str,
        f: SourceFile,
        day: date | None = None,
        settle_seconds: float = 0,
    ) -> list[Path]:
        """Files in incoming that match the logical file and no batch has claimed yet;
        with ``day``, only those stamped with that day (see ``delivery_date``); with
        ``settle_seconds`` or a ready marker, only the complete ones (see ``still_arriving``)."""
        return [p for p in self._candidates(cfg, system, f, day) if not still_arriving(p, f, settle_seconds)]

    def incomplete(self, cfg: ClientConfig, settle_seconds: float, day: date | None = None) -> list[str]:
        """Why each unclaimed delivery that is not complete yet cannot be claimed, e.g.
        ``crm/sales_details.csv is still being written (size changed 4 s ago)``."""
        found = []
        for system, f in cfg.files:
            for path in self._candidates(cfg, system.name, f, day):
                why = still_arriving(path, f, settle_seconds)
                if why:
                    found.append(f"{system.name}/{why}")
        return found

    def _candidates(self, cfg: ClientConfig, system: str, f: SourceFile, day: date | None) -> list[Path]:
        folder = self.raw(cfg.client, system, "incoming")
        if not folder.is_dir():
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file()
            and not p.is_symlink()
            and not p.name.startswith(".")
            and claimed_batch(p.name) is None
            and f.matches(p.name)
            and (day is None or delivery_date(p.name) == day)
        )

    def unrecognised(self, cfg: ClientConfig) -> list[str]:
        """``system/name (why)`` of each entry in incoming that no batch will ever claim:
        names matching no pattern, symbolic links, hidden files, folders. They are left
        where they are (nothing is deleted) and reported, so an operator can act."""
        found = []
        for system in cfg.sources:
            folder = self.raw(cfg.client, system.name, "incoming")
            if not folder.is_dir():
                continue
            markers = {
                f.ready_marker.format(name=p.name)
                for f in system.files
                if f.ready_marker
                for p in folder.iterdir()
                if f.matches(p.name) or f.matches(unclaimed_name(p.name))
            }
            for path in sorted(folder.iterdir()):
                if path.name in markers:
                    continue  # a sender's ready marker, next to its file
                if path.is_symlink():
                    why = "a symbolic link, refused"
                elif path.name.startswith("."):
                    continue  # a delivery still being written (hidden until renamed)
                elif not path.is_file():
                    why = "not a file"
                elif claimed_batch(path.name) is not None:
                    continue  # a claimed file put back for a restart
                elif not any(f.matches(path.name) for f in system.files):
                    why = "matches no file pattern"
                else:
                    continue
                found.append(f"{system.name}/{path.name} ({why})")
        return found

    def missing_required(
        self, cfg: ClientConfig, day: date | None = None, settle_seconds: float = 0
    ) -> list[str]:
        """``system/file`` of each required logical file with nothing complete in incoming
        (for ``day``: nothing stamped with that day). A database source is extracted by
        the batch, never waited for."""
        return [
            f"{system.name}/{f.name}"
            for system, f in cfg.files
            if f.required
            and not f.is_database
            and not self.unclaimed(cfg, system.name, f, day, settle_seconds)
        ]

    def delivered_on(self, cfg: ClientConfig, day: date) -> list[str]:
        """``system/file`` of each logical file with an unclaimed delivery stamped ``day``."""
        return [
            f"{system.name}/{f.name}" for system, f in cfg.files if self.unclaimed(cfg, system.name, f, day)
        ]

    def locate(self, base: Path, name: str, states: tuple[str, ...]) -> Path | None:
        """Find ``name`` in ``base/<state>`` for the first state that has it."""
        for state in states:
            path = safe_child(base / state, name)
            if path.is_file():
                return path
        return None

    def locate_raw(self, client: str, system: str, name: str) -> Path | None:
        """The claimed raw file, in whichever state folder it is (incoming first); None if gone."""
        return self.locate(self.root / "raw" / client / system, name, RAW_STATES)

    def locate_parquet(self, client: str, system: str, name: str) -> Path | None:
        """The Parquet of a claimed file, in whichever state folder it is; None if gone."""
        return self.locate(self.root / "data" / client / system, name, DATA_STATES)

    def locate_manifest(self, client: str, batch_id: str) -> Path | None:
        """A batch's manifest, in whichever state folder it is; None if gone."""
        return self.locate(
            self.root / "batch_info" / client, manifest_name(client, batch_id), MANIFEST_STATES
        )


def still_arriving(path: Path, f: SourceFile, settle_seconds: float, now: float | None = None) -> str | None:
    """Why a delivered file is not complete yet, None when it is: its ready marker is
    missing (when the file has one), or it changed less than ``settle_seconds`` ago (a
    sender writing in place under the final name has not finished)."""
    if f.ready_marker:
        marker = f.ready_marker.format(name=path.name)
        return (
            None if (path.parent / marker).is_file() else f"{path.name} waits for its ready marker {marker}"
        )
    if settle_seconds <= 0:
        return None
    age = (time.time() if now is None else now) - path.stat().st_mtime
    if age < settle_seconds:
        return f"{path.name} is still being written (size changed {max(age, 0):.0f} s ago)"
    return None


def ready_marker_of(path: Path, f: SourceFile) -> Path | None:
    """The sender's ready marker of a delivered file, if the file has one configured."""
    return path.parent / f.ready_marker.format(name=path.name) if f.ready_marker else None


def manifest_name(client: str, batch_id: str) -> str:
    """``batch_output_<client>_<batch>.json``."""
    return f"batch_output_{client}_{batch_id}.json"


def move(path: Path, folder: Path) -> Path:
    """Atomically move ``path`` into ``folder`` (same name); a no-op if already there."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if path != target:
        os.replace(path, target)
    return target


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON so readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
