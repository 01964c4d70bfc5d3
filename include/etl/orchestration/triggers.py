"""The trigger ``wait_for_files`` defers to: it looks at the client's incoming folders in
the triggerer, so a client waiting for its delivery holds no worker process and launches
no task between checks.

It only looks at files (what ``tasks.delivery_waiting`` says is missing or still being
written), never at the warehouse: the client's lease is taken by the sensor when it
resumes. It fires when the delivery is there (``ready``), when the sensor's timeout has
passed (``timeout``, with what was still missing), or when the check itself fails
(``recheck``: the sensor runs the check again and says why).

``DeliveryWatcher`` is the other way to wait (``sensor.start: delivery``): no run exists
while nothing has come. It watches a client's incoming folders for as long as the DAG
is deployed (an ``AssetWatcher`` of the client's delivery asset) and fires an event,
which starts a run, when a delivery is complete, or when none has come for the
sensor's timeout (that run fails saying so, as the sensor would).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from include.etl.config import ClientConfig, config_for


def _tasks() -> Any:
    """The tasks module, imported in the triggerer when a trigger runs: the DAG files
    that name these triggers are parsed without it (``operators.tasks``)."""
    from include.etl.orchestration import tasks

    return tasks


class IncomingFilesTrigger(BaseTrigger):
    """Fires once a client's delivery (of ``day`` for a backfill run) is complete.

    ``deadline``: the epoch second the sensor times out; ``delay``: seconds to wait before
    the first look; ``files``: False when the run needs no new files (it waits for the
    client, busy with another run): then it fires after ``delay``, without looking.
    """

    def __init__(
        self,
        client: str,
        poke_interval: float,
        deadline: float,
        day: str | None = None,
        files: bool = True,
        delay: float = 0,
    ) -> None:
        super().__init__()
        self.client, self.poke_interval, self.deadline = client, poke_interval, deadline
        self.day, self.files, self.delay = day, files, delay

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "client": self.client,
                "poke_interval": self.poke_interval,
                "deadline": self.deadline,
                "day": self.day,
                "files": self.files,
                "delay": self.delay,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.files:
            yield TriggerEvent({"status": "ready", "deadline": self.deadline})
            return
        day = date.fromisoformat(self.day) if self.day else None
        cfg: ClientConfig | None = None
        while True:
            try:  # config and files are read in a thread: the triggerer's loop never blocks
                # The config once per deferral (reading and validating it was most of a
                # look's cost); the sensor reads it afresh when it resumes.
                if cfg is None:
                    cfg = await asyncio.to_thread(config_for, self.client)
                waiting = await asyncio.to_thread(_tasks().delivery_waiting, cfg, day)
            except Exception as exc:
                yield TriggerEvent({"status": "recheck", "why": str(exc), "deadline": self.deadline})
                return
            if waiting is None:
                yield TriggerEvent({"status": "ready", "deadline": self.deadline})
                return
            if time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "waiting": waiting, "deadline": self.deadline})
                return
            self.log.info("%s: %s", self.client, waiting)
            await asyncio.sleep(min(self.poke_interval, max(self.deadline - time.time(), 0.1)))


class DeliveryWatcher(BaseEventTrigger):
    """Starts the client's run when its delivery is complete (``sensor.start: delivery``).

    Looks every ``poke_interval`` seconds. A complete delivery fires ``delivered`` once
    (the same files still there, e.g. while the run it started queues, fire nothing more;
    once taken, the same files delivered again are a new delivery; after a triggerer
    restart a delivery not taken yet fires again: the second run finds it taken and is
    skipped). No complete delivery for ``timeout`` seconds (since the watcher first ran or
    last saw one) fires ``overdue``, once per timeout. Under a triggerer that time and the
    delivery announced are kept in the asset's state store, so a triggerer restart
    neither postpones ``overdue`` nor announces a delivery twice. It never stops on an
    error: it logs it and looks again.
    """

    CONFIG_REFRESH_S = 300  # the config is read again this often (it was most of a look's cost)

    def __init__(self, client: str, poke_interval: float, timeout: float) -> None:
        super().__init__()
        self.client, self.poke_interval, self.timeout = client, poke_interval, timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"client": self.client, "poke_interval": self.poke_interval, "timeout": self.timeout},
        )

    async def _recall(self, key: str, default: Any) -> Any:
        """A value kept across triggerer restarts (the default when not under a triggerer)."""
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return default
        try:
            value = await store.aget(key)
        except Exception as exc:
            self.log.warning("%s: could not read the watcher's state (%s): %s", self.client, key, exc)
            return default
        return default if value is None else value

    async def _keep(self, key: str, value: Any) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:
            await store.aset(key, value)
        except Exception as exc:
            self.log.warning("%s: could not keep the watcher's state (%s): %s", self.client, key, exc)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        announced: tuple[str, ...] = tuple(await self._recall("announced", []))
        quiet_since = float(await self._recall("quiet_since", time.time()))
        await self._keep("quiet_since", quiet_since)
        cfg: ClientConfig | None = None
        read_at = 0.0
        while True:
            try:  # in a thread: the triggerer's loop never blocks on the filesystem
                if cfg is None or time.time() - read_at >= self.CONFIG_REFRESH_S:
                    cfg, read_at = await asyncio.to_thread(config_for, self.client), time.time()
                waiting, files = await asyncio.to_thread(_tasks().delivery_seen, cfg)
            except Exception as exc:
                self.log.warning("%s: could not look at the incoming folders: %s", self.client, exc)
                await asyncio.sleep(self.poke_interval)
                continue
            now = time.time()
            if waiting is None:
                quiet_since = now  # a delivery is there: nothing is overdue
                if files != announced:
                    announced = files
                    await self._keep("announced", list(files))
                    await self._keep("quiet_since", now)
                    self.log.info("%s: delivery complete: %s", self.client, ", ".join(files))
                    yield TriggerEvent({"client": self.client, "status": "delivered", "files": list(files)})
            else:
                if announced:  # taken: the same files again are a new delivery; quiet from now
                    announced = ()
                    await self._keep("announced", [])
                    await self._keep("quiet_since", quiet_since)
                if now - quiet_since >= self.timeout:
                    quiet_since = now
                    await self._keep("quiet_since", quiet_since)
                    self.log.warning("%s: no delivery for %.0f s: %s", self.client, self.timeout, waiting)
                    yield TriggerEvent({"client": self.client, "status": "overdue", "waiting": waiting})
            await asyncio.sleep(self.poke_interval)
