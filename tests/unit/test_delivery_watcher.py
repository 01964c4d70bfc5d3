"""The delivery watcher (``sensor.start: delivery``), run as the triggerer runs it, on
real incoming folders: which events it fires, and when.

* nothing fires while the delivery is missing or incomplete;
* a complete delivery fires ``delivered`` once, naming its files, however long it
  stays in incoming;
* once taken, no delivery for the timeout fires ``overdue`` with what is missing;
* the same files delivered again are a new delivery.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from include.etl.ingest.landing import Landing
from include.etl.orchestration.triggers import DeliveryWatcher
from tests.conftest import complete, deliver_demo

TIMEOUT_S = 3.0


async def _until(check: Callable[[], bool], seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def test_the_watcher_fires_once_per_delivery_and_when_none_came(landing: Landing, tmp_path: Path) -> None:
    generated = deliver_demo("client1", Landing(tmp_path / "elsewhere"), tmp_path / "generated", rows=200)
    incoming = {n: landing.raw("client1", path.parent.name, "incoming") for n, path in generated.items()}

    def deliver(names: list[str]) -> None:
        for name in names:
            incoming[name].mkdir(parents=True, exist_ok=True)
            complete(shutil.copy2(generated[name], incoming[name] / generated[name].name))

    async def scenario() -> list[dict]:
        events: list[dict] = []
        watcher = DeliveryWatcher("client1", poke_interval=0.05, timeout=TIMEOUT_S)

        async def consume() -> None:
            async for event in watcher.run():
                events.append(event.payload)

        task = asyncio.create_task(consume())
        try:
            names = sorted(generated)
            deliver([n for n in names if "cust_info" in n])  # a part of the delivery
            await asyncio.sleep(1.0)
            assert events == []
            deliver(names)
            await _until(lambda: len(events) == 1, 10)
            await asyncio.sleep(1.0)  # the same files, still there: nothing more
            assert len(events) == 1
            for folder in set(incoming.values()):  # a run takes them
                for path in folder.iterdir():
                    path.unlink()
            await _until(lambda: len(events) == 2, TIMEOUT_S + 10)
            deliver(names)  # the same files again: a new delivery
            await _until(lambda: len(events) == 3, 10)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return events

    delivered, overdue, again = asyncio.run(scenario())
    files = sorted(f"{path.parent.name}/{path.name}" for path in generated.values())
    assert delivered["status"] == "delivered" and delivered["client"] == "client1"
    assert [entry.split(" ")[0] for entry in delivered["files"]] == files
    assert overdue == {
        "client": "client1",
        "status": "overdue",
        "waiting": "still waiting for: crm/cust_info, crm/prd_info, crm/sales_details, "
        "erp/CUST_AZ12, erp/LOC_A101, erp/PX_CAT_G1V2",
    }
    assert again["status"] == "delivered"
    assert [entry.split(" ")[0] for entry in again["files"]] == files
