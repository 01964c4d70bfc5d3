"""Progress lines for long steps: rows done and rows/s, at most every few seconds."""

from __future__ import annotations

import logging
import time


class Progress:
    """Counts rows as a step goes and logs rows and rows/s, at most every few seconds."""

    def __init__(self, log: logging.Logger, what: str, every_seconds: float = 5.0) -> None:
        self.log, self.what, self.every = log, what, every_seconds
        self.rows = 0
        self.started = self.last = time.monotonic()

    def add(self, rows: int) -> None:
        """Count ``rows`` more; log a progress line if the last one is old enough."""
        self.rows += rows
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.log.info("%s: %s rows, %s rows/s", self.what, f"{self.rows:,}", f"{self.rate:,.0f}")

    @property
    def seconds(self) -> float:
        """Seconds since the step started."""
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows / max(self.seconds, 1e-9)

    def done(self) -> None:
        """Log the step's total: rows, seconds, rows/s."""
        self.log.info(
            "%s: done, %s rows in %.2f s (%s rows/s)",
            self.what,
            f"{self.rows:,}",
            self.seconds,
            f"{self.rate:,.0f}",
        )
