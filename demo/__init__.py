"""Deterministic demo data for the demo clients, at any scale.

``deliver`` writes a client's files into a staging folder, then moves each into its
incoming folder in one rename, as a real delivery should arrive: the sensor never sees
a half-written file.
"""

from __future__ import annotations

import importlib
import os
import shutil
import time
from pathlib import Path

from include.etl.ingest.landing import Landing, move

# Each demo client's data: (generator module, its default seed). client3 is a second
# retailer of client1's template: the same kind of files, other customers and sales.
GENERATORS: dict[str, tuple[str, int | None]] = {
    "client1": ("client1", None),
    "client2": ("client2", None),
    "client3": ("client1", 31),
}


def generate(
    client: str, out_dir: Path, rows: int, seed: int | None = None, stamp: str | None = None
) -> list[Path]:
    if client not in GENERATORS:
        raise ValueError(f"no demo data generator for {client!r}")
    module_name, default_seed = GENERATORS[client]
    module = importlib.import_module(f"demo.{module_name}")
    kwargs: dict = {"rows": rows, "stamp": stamp}
    if seed is not None or default_seed is not None:
        kwargs["seed"] = seed if seed is not None else default_seed
    return module.generate(out_dir, **kwargs)


def deliver(
    client: str, landing: Landing, rows: int, seed: int | None = None, stamp: str | None = None
) -> list[Path]:
    """Generate the client's files and move them into raw/<client>/<system>/incoming."""
    staging = landing.root / ".staging" / client
    shutil.rmtree(staging, ignore_errors=True)
    delivered = []
    written = time.time() - 3600  # a delivery its sender finished writing: past the settle time
    for path in generate(client, staging, rows, seed, stamp):
        os.utime(path, (written, written))
        system = path.parent.name
        delivered.append(move(path, landing.raw(client, system, "incoming")))
    shutil.rmtree(staging, ignore_errors=True)
    return delivered
