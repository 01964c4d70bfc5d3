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
import zlib
from pathlib import Path

from include.etl.ingest.landing import Landing, move

# The demo data of each template: its generator module, and the seed of the template's
# first client (client1, client2). Any other client of a template gets that kind of
# files from a seed of its own name, so a client onboarded by one YAML file (client3)
# has demo data with nothing added here, and figures of its own.
GENERATORS: dict[str, tuple[str, str]] = {
    "retail_crm_erp": ("client1", "client1"),
    "saas_billing": ("client2", "client2"),
}


def generate(
    client: str, out_dir: Path, rows: int, seed: int | None = None, stamp: str | None = None
) -> list[Path]:
    from include.etl.config import ConfigError, config_for

    try:
        template = config_for(client).template
    except (ConfigError, OSError):
        template = None
    if template not in GENERATORS:
        raise ValueError(f"no demo data generator for {client!r} (template {template!r})")
    module_name, first_client = GENERATORS[template]
    module = importlib.import_module(f"demo.{module_name}")
    kwargs: dict = {"rows": rows, "stamp": stamp}
    if seed is None and client != first_client:
        seed = zlib.crc32(client.encode()) % 10_000
    if seed is not None:
        kwargs["seed"] = seed
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
