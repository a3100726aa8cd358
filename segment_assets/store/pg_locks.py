"""One snapshot per provider account at a time, across machines, with PostgreSQL advisory
locks.

A process holds all its account locks on one session (one connection, however many accounts
it snapshots side by side), keyed by provider and account. The threads of the process are
kept apart by an in-process lock per account first (a session may take its own advisory lock
twice). A lock that is taken waits by asking again, at most every second, and says so in the
run's log after a second. When the process dies (SIGKILL, a lost pod), PostgreSQL ends the
session and frees every lock it held; TCP keepalives let the server notice a holder whose
machine vanished.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from segment_assets.providers import scheduler
from segment_assets.store.base import NOTICE_AFTER_SECONDS, AccountBusyError

if TYPE_CHECKING:
    from segment_assets.store.postgres import PostgresStore

KEEPALIVE_SECONDS = 30
POLL_FIRST_SECONDS = 0.05
POLL_MAX_SECONDS = 1.0
# The session holds locks while idle for hours: no server-side timeout may end it.
SESSION_SETTINGS = (
    ("idle_session_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("statement_timeout", "0"),
    ("tcp_keepalives_idle", str(KEEPALIVE_SECONDS)),
    ("tcp_keepalives_interval", str(KEEPALIVE_SECONDS // 3)),
    ("tcp_keepalives_count", "3"),
)


def advisory_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for ``parts`` (the same on every machine)."""
    text = "\0".join(("segment_assets", *parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)


class AccountLocks:
    """The account locks of one process on one store."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._guard = threading.Lock()  # the session and the counts below
        self._session: psycopg.Connection | None = None
        self._pid = 0
        self._users = 0  # hold() calls under way (waiting or holding): the session stays
        self._local: dict[int, threading.Lock] = {}

    # -- the session ----------------------------------------------------------------------
    def _open_session(self) -> psycopg.Connection:
        """The session, (re)opened when there is none, it broke, or this is a forked child
        (whose parent's connection must not be shared). Call with ``_guard`` held."""
        session = self._session
        if session is not None and self._pid == os.getpid() and not session.broken:
            return session
        self._close()
        conn = self.store.connect(autocommit=True)
        with self.store.errors("cannot prepare the session of the account locks"):
            for name, value in SESSION_SETTINGS:
                conn.execute("SELECT set_config(%s, %s, false)", [name, value])
        self._session, self._pid = conn, os.getpid()
        return conn

    def _close(self) -> None:
        if self._session is not None and self._pid == os.getpid():
            self._session.close()
        self._session = None

    def _try(self, key: int, label: str) -> psycopg.Connection | None:
        """Take the advisory lock ``key`` if free: the session it is held on, else None."""
        with self._guard, self.store.errors(f"{label}: cannot take this account's snapshot lock"):
            session = self._open_session()
            taken = session.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
        return session if taken else None

    def _release(self, key: int, session: psycopg.Connection) -> bool:
        """Free the lock; False when it was already lost with its session."""
        with self._guard:
            if session is not self._session or session.broken:
                return False
            try:
                return bool(session.execute("SELECT pg_advisory_unlock(%s)", [key]).fetchone()[0])
            except psycopg.Error:
                self._close()
                return False

    @contextmanager
    def _using(self) -> Iterator[None]:
        with self._guard:
            self._users += 1
        try:
            yield
        finally:
            with self._guard:
                self._users -= 1
                if not self._users:
                    self._close()

    def _local_lock(self, key: int) -> threading.Lock:
        with self._guard:
            return self._local.setdefault(key, threading.Lock())

    # -- the lock -------------------------------------------------------------------------
    @contextmanager
    def hold(
        self, key: int, label: str, log: Any, wait_seconds: float, what: str
    ) -> Iterator[None]:
        """Hold the lock ``key`` while the block runs (see the module's docstring)."""
        started = time.monotonic()
        deadline = started + wait_seconds
        noticed = False

        def busy() -> AccountBusyError:
            return AccountBusyError(
                f"{label}: another run kept this account's snapshot lock ({what}) for more "
                f"than {wait_seconds:,.0f} s; is a run stuck?"
            )

        def notice() -> None:
            nonlocal noticed
            if not noticed and log is not None:
                log.info(f"{label}: waiting for another run's snapshot of this account to finish")
            noticed = True

        delay = POLL_FIRST_SECONDS

        def wait_a_little() -> None:
            """Sleep before asking again: a timer of the loop inside a provider step's
            scheduler (the other accounts go on), ``time.sleep`` outside one."""
            nonlocal delay
            now = time.monotonic()
            if now >= deadline:
                raise busy()
            if now - started >= NOTICE_AFTER_SECONDS:
                notice()
            pause = min(delay, deadline - now)
            if not noticed:  # wake for the notice after a second
                pause = min(pause, started + NOTICE_AFTER_SECONDS - now)
            scheduler.sleep(max(0.0, pause))
            delay = min(delay * 2, POLL_MAX_SECONDS)

        local = self._local_lock(key)
        while not local.acquire(blocking=False):  # never block the scheduler's thread
            wait_a_little()
        try:
            with self._using():
                while (session := self._try(key, label)) is None:
                    wait_a_little()
                if noticed and log is not None:
                    waited = time.monotonic() - started
                    log.info(f"{label}: the other run finished after {waited:.1f} s")
                try:
                    yield
                finally:
                    if not self._release(key, session) and log is not None:
                        log.warning(
                            f"{label}: the connection holding this account's snapshot lock "
                            "was lost before the snapshot ended; another run may have "
                            "snapshotted it meanwhile"
                        )
        finally:
            local.release()
