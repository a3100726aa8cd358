"""One snapshot at a time per provider account, across the run processes of one machine.

The Dagster concurrency pools (``dagster.yaml``) let one step per provider run at a time,
but on the SQLite instance that ``dagster dev`` uses two runs waiting for the same pool can
both be granted its slot when it frees up (SQLite has no row locks), and their requests then
stack on the provider's rate limit. This lock closes that gap: every snapshot of an account
holds a file lock next to the DuckDB file, which every run writing to that file shares
(DuckDB is a local file, so they all run on one machine).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from segment_assets.store.base import DEFAULT_WAIT_SECONDS, NOTICE_AFTER_SECONDS, AccountBusyError

LOCK_FOLDER = ".locks"


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
    started = time.monotonic()
    try:
        lock.acquire(timeout=NOTICE_AFTER_SECONDS)
    except Timeout:
        if log is not None:
            log.info(f"{label}: waiting for another run's snapshot of this account to finish")
        try:
            lock.acquire(timeout=max(0.0, wait_seconds - NOTICE_AFTER_SECONDS))
        except Timeout:
            raise AccountBusyError(
                f"{label}: another run kept this account's snapshot lock ({path}) for more "
                f"than {wait_seconds:,.0f} s; is a run stuck?"
            ) from None
        if log is not None:
            log.info(f"{label}: the other run finished after {time.monotonic() - started:.1f} s")
    try:
        yield
    finally:
        lock.release()
