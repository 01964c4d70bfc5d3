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

The root may also be an object-storage URL (``s3://<conn_id>@<bucket>/<prefix>``), read
and written through Airflow's ``ObjectStoragePath`` with the same code: the paths of this
module are then ``ObjectStoragePath`` objects, which answer the same calls as
``pathlib.Path``. Three things differ, each behind one function here: a move is a copy
then a delete (``move``; docs/object-storage.md says why a crash between the two is
harmless), a listing is read fresh from the store (``listing``), and the readers and
writers that need a file on disk (Arrow, the CSV sniffing, the extract's COPY) get a
scratch copy (``local_copy``, ``local_output``). On a local root those are the file
itself: nothing is copied.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePath

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

    root: Path  # or an ObjectStoragePath (see the module's docstring)

    @classmethod
    def from_env(cls) -> Landing:
        """The landing root of ``ETL_DATA_ROOT`` (default ``.local/landing``), a local
        path. An object-storage URL (``s3://landing_store@etl-landing/prod``) is Airflow's
        to open: ``orchestration.connections.landing()`` gives that landing."""
        location = os.environ.get("ETL_DATA_ROOT", str(DEFAULT_ROOT))
        if "://" in location:
            raise ValueError(
                f"ETL_DATA_ROOT {location} is object storage: open it with "
                "include.etl.orchestration.connections.landing()"
            )
        return cls(Path(location))

    @property
    def remote(self) -> bool:
        """True when the root is on object storage."""
        return is_remote(self.root)

    def raw(self, client: str, system: str, state: str) -> Path:
        """``raw/<client>/<system>/<state>``: files as delivered."""
        assert state in RAW_STATES, state
        return self.root / "raw" / client / system / state

    def data(self, client: str, system: str, state: str) -> Path:
        """``data/<client>/<system>/<state>``: their Parquet."""
        assert state in DATA_STATES, state
        return self.root / "data" / client / system / state

    def typed(self, client: str, system: str, parquet_name: str) -> Path | None:
        """The typed rows (see ``typed_name``) of a converted file, in ``data/.../incoming``;
        None on object storage, where they are not kept: they would cost an upload and a
        download for a load that types the rows itself as fast as it reads them back."""
        if self.remote:
            return None
        return safe_child(self.data(client, system, "incoming"), typed_name(parquet_name))

    def drop_typed(self, client: str, system: str, parquet_name: str) -> None:
        """Remove a converted file's typed rows, and any partial write of them."""
        path = self.typed(client, system, parquet_name)
        if path is None:
            return
        for leftover in (path, partial_path(path)):
            leftover.unlink(missing_ok=True)

    def batch_info(self, client: str, state: str) -> Path:
        """``batch_info/<client>/<state>``: the manifests."""
        assert state in MANIFEST_STATES, state
        return self.root / "batch_info" / client / state

    def ensure(self, cfg: ClientConfig) -> None:
        """Create every folder of the client's contract (object storage has no folders)."""
        if self.remote:
            return
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
        return sorted(
            p
            for p in listing(self.raw(cfg.client, system, "incoming"))
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
            entries = listing(self.raw(cfg.client, system.name, "incoming"))
            markers = {
                f.ready_marker.format(name=p.name)
                for f in system.files
                if f.ready_marker
                for p in entries
                if f.matches(p.name) or f.matches(unclaimed_name(p.name))
            }
            for path in entries:
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
    """Move ``path`` into ``folder`` (same name); a no-op if already there.

    Locally one atomic ``os.replace``. On object storage a copy, then the delete of the
    original: a crash between the two leaves the same object in both folders, and the
    step that moved it, run again, finds the first one (``Landing.locate`` looks in a
    fixed order) and moves it again over the copy."""
    target = folder / path.name
    if path == target:
        return target
    if is_remote(path):
        path.rename(target)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    return target


def is_remote(path: Path) -> bool:
    """True for a path on object storage (an ``ObjectStoragePath``), False for a local one."""
    return not isinstance(path, PurePath)


def listing(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; none if it does not exist. On object storage
    the store is asked again (a listing cached by an earlier call would miss what a
    sender uploaded since)."""
    if is_remote(folder):
        folder.fs.invalidate_cache(folder.path)  # type: ignore[attr-defined]
    if not folder.is_dir():
        return []
    return sorted(folder.iterdir())


def same_object(a: Path, b: Path) -> bool:
    """Two objects on object storage with the same content: size and ETag (a copy keeps both)."""
    first, second = a.fs.info(a.path), b.fs.info(b.path)  # type: ignore[attr-defined]
    return first.get("size") == second.get("size") and first.get("ETag") == second.get("ETag")


@contextmanager
def local_copy(path: Path) -> Iterator[Path]:
    """``path`` as a file on this machine, for readers that need one: the file itself on a
    local root; on object storage a scratch copy, removed when the block ends."""
    if not is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="etl-landing-") as scratch:
        local = Path(scratch) / path.name
        path.fs.get_file(path.path, str(local))  # type: ignore[attr-defined]
        yield local


@contextmanager
def local_output(path: Path) -> Iterator[Path]:
    """Where to write ``path`` on this machine: ``path`` itself on a local root; on object
    storage a scratch file, uploaded to ``path`` in one request when the block ends
    without error (an object appears whole or not at all) and removed either way."""
    if not is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="etl-landing-") as scratch:
        local = Path(scratch) / path.name
        yield local
        if local.is_file():
            path.fs.put_file(str(local), path.path)  # type: ignore[attr-defined]


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON so readers see the old file or the new one, never half of one."""
    if is_remote(path):  # one PUT: an object is replaced whole
        path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return
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
