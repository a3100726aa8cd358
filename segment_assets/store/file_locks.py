"""One snapshot at a time per provider account, across the run processes of one machine.

The Dagster concurrency pools (``dagster.yaml``) let one step per provider run at a time,
but on the SQLite instance that ``dagster dev`` uses two runs waiting for the same pool can
both be granted its slot when it frees up (SQLite has no row locks), and their requests then
stack on the provider's rate limit. This lock closes that gap: every snapshot of an account
holds a file lock next to the DuckDB file, which every run writing to that file shares
(DuckDB is a local file, so they all run on one machine). A run waiting for a lock polls it,
and inside a provider step's scheduler each wait is a timer, not a thread.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from segment_assets.providers import scheduler
from segment_assets.store.base import DEFAULT_WAIT_SECONDS, NOTICE_AFTER_SECONDS, AccountBusyError

LOCK_FOLDER = ".locks"
POLL_FIRST_SECONDS = 0.05
POLL_MAX_SECONDS = 1.0


def lock_path(database: str, provider: str, account: str) -> Path:
    """The lock file of one account: named by provider and a digest of the account."""
    digest = hashlib.sha256(account.encode()).hexdigest()[:16]
    return Path(database).parent / LOCK_FOLDER / f"{provider}-{digest}.lock"


@contextmanager
def account_lock(
    database: str,
    provider: str,
    account: str,
    label: str,
    log: Any = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> Iterator[None]:
    """Hold the snapshot lock of ``provider``/``account`` while the block runs.

    Waits for a run that holds it (saying so in the log after a second), up to
    ``wait_seconds``, then raises :class:`AccountBusyError`.
    """
    path = lock_path(database, provider, account)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))

    def take() -> bool:
        try:
            lock.acquire(blocking=False)
        except Timeout:
            return False
        return True

    def busy() -> AccountBusyError:
        return AccountBusyError(
            f"{label}: another run kept this account's snapshot lock ({path}) for more "
            f"than {wait_seconds:,.0f} s; is a run stuck?"
        )

    wait_until_taken(take, busy, label, log, wait_seconds)
    try:
        yield
    finally:
        lock.release()


def wait_until_taken(
    take: Callable[[], bool],
    busy: Callable[[], Exception],
    label: str,
    log: Any = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> None:
    """Call ``take`` (one attempt at a lock, True when taken) until it succeeds, every
    50 ms at first and then less often, saying in the log after a second that the account
    waits and, once taken, how long it waited; raise ``busy()`` after ``wait_seconds``.

    Waiting is :func:`~segment_assets.providers.scheduler.sleep`: inside a provider step's
    scheduler a waiting account costs a timer, not a thread, and the other accounts go on
    meanwhile.
    """
    started = time.monotonic()
    deadline = started + wait_seconds
    noticed = False
    delay = POLL_FIRST_SECONDS
    while not take():
        now = time.monotonic()
        if now >= deadline:
            raise busy()
        if not noticed and now - started >= NOTICE_AFTER_SECONDS:
            noticed = True
            if log is not None:
                log.info(f"{label}: waiting for another run's snapshot of this account to finish")
        pause = min(delay, deadline - now)
        if not noticed:  # wake for the notice after a second
            pause = min(pause, started + NOTICE_AFTER_SECONDS - now)
        scheduler.sleep(max(0.0, pause))
        delay = min(delay * 2, POLL_MAX_SECONDS)
    if noticed and log is not None:
        log.info(f"{label}: the other run finished after {time.monotonic() - started:.1f} s")
