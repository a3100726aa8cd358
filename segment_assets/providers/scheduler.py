"""One scheduler for every account of a provider step: a wait costs a timer, not a thread.

A provider step may snapshot hundreds of accounts side by side, each at its own pace
(OneSignal allows about one request a second per app). A thread per account, per request
in flight or per request waiting for its slot does not scale to that. Here one asyncio
event loop, in the thread that runs the step, drives every account:

* each account's snapshot — plain blocking-style code: the provider module, the crawler,
  the HTTP client's retry loop — runs in a greenlet of that thread (the technique of
  SQLAlchemy's asyncio layer and Playwright's synchronous API). Where it would wait it hands
  the wait to the loop instead: its rate limiter's next slot, a ``Retry-After`` pause, a
  backoff, a busy account lock are each a timer of the loop;
* the blocking part of a request (connect, send, read and judge the answer) runs on one
  bounded pool of worker threads that every account of the step shares
  (``SEGMENT_ASSETS_WORKERS``). A request asks for a worker only once its account's slot
  has come and takes the slot only when it holds a worker, so waiting requests queue in the
  loop, earliest first, and a busy pool never sends a request late on top of the next one;
* each account keeps its own budget: rate limiter, ``max_concurrency`` (a :class:`Pool` of
  the crawler bounds its requests in flight), ``Retry-After`` pauses, errors, lock, session.

Outside a scheduler (a client used on its own, from threads) the same calls block as usual:
:func:`send` waits for the limiter in the calling thread, :func:`sleep` sleeps.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import greenlet

T = TypeVar("T")


class Limiter(Protocol):
    """What :func:`send` needs of a rate limiter (a ``ratelimit.RateLimiter``)."""

    def now(self) -> float: ...
    def acquire(self) -> float: ...
    def wait_time(self) -> float: ...
    def try_acquire(self, started: float) -> float | None: ...


class _Sync(greenlet.greenlet):
    """A greenlet running blocking-style code on behalf of a scheduler."""

    def __init__(self, run: Callable[..., Any], scheduler: Scheduler) -> None:
        super().__init__(run)
        self.scheduler = scheduler


def current() -> Scheduler | None:
    """The scheduler driving the calling code, or None outside one."""
    return getattr(greenlet.getcurrent(), "scheduler", None)


def _wait(awaitable: Awaitable[T]) -> T:
    """Hand ``awaitable`` to the loop and return its result (inside a scheduler only)."""
    return greenlet.getcurrent().parent.switch(awaitable)


async def _run_sync(scheduler: Scheduler, call: Callable[..., T], *args: Any) -> T:
    """Run blocking-style ``call`` in a greenlet, awaiting for it whatever it hands over."""
    runner = _Sync(call, scheduler)
    runner.gr_context = contextvars.copy_context()  # it sees the caller's context variables
    step = runner.switch(*args)
    while not runner.dead:
        try:
            value = await step
        except BaseException as exc:  # its own errors and a cancellation go back into it
            step = runner.throw(exc)
        else:
            step = runner.switch(value)
    return step


class Scheduler:
    """Runs calls side by side in one thread, their requests on ``workers`` shared threads.

    ``name`` prefixes the worker threads' names (the provider).
    """

    def __init__(self, workers: int, name: str = "requests") -> None:
        if workers < 1:
            raise ValueError(f"a scheduler needs at least one worker, got {workers}")
        self.workers = workers
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._free: asyncio.Semaphore | None = None

    def run(
        self, calls: Sequence[Callable[[], T]], delays: Sequence[float] | None = None
    ) -> list[T]:
        """Run every call to its end; their results in order, or the first error raised.
        ``delays``: seconds each call starts late (a timer each; see :func:`staggered`).

        Blocks the calling thread, which drives the loop; from inside a running asyncio loop
        the work moves to a thread of its own.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            with ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-scheduler") as own:
                return own.submit(self.run, calls, delays).result()
        loop = asyncio.new_event_loop()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{self.name}-request")
        try:
            with _older_objects_frozen():
                return loop.run_until_complete(self._main(calls, delays or [0.0] * len(calls)))
        finally:
            try:
                _cancel_remaining(loop)
            finally:
                loop.close()
                self._pool.shutdown(wait=False, cancel_futures=True)

    async def _main(self, calls: Sequence[Callable[[], T]], delays: Sequence[float]) -> list[T]:
        self._free = asyncio.Semaphore(self.workers)

        async def start(call: Callable[[], T], delay: float) -> T:
            if delay > 0:
                await asyncio.sleep(delay)
            return await _run_sync(self, call)

        return list(await asyncio.gather(*map(start, calls, delays)))

    async def send(self, limiter: Limiter, exchange: Callable[[float], T]) -> T:
        """Wait for the limiter's slot and a free worker, then run ``exchange(slot time)`` on
        the worker (see the module's docstring)."""
        assert self._pool is not None and self._free is not None
        loop = asyncio.get_running_loop()
        started = limiter.now()
        while True:
            delay = limiter.wait_time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            async with self._free:
                sent_at = limiter.try_acquire(started)
                if sent_at is None:  # another request of the account took it, or a pause
                    continue
                return await loop.run_in_executor(self._pool, exchange, sent_at)


_frozen = 0  # schedulers running in this process
_frozen_lock = threading.Lock()


@contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """While schedulers run, the garbage collector leaves alone the objects that existed
    before (``gc.freeze``): the interpreter, Dagster and pandas hold hundreds of thousands,
    and a full collection through them holds every thread for 100–250 ms. A request held
    that long after taking its slot reaches the provider late, and the next one, on time,
    too soon after it for a strict limit. Frozen objects are collected again afterwards."""
    global _frozen
    with _frozen_lock:
        if not _frozen:
            gc.freeze()
        _frozen += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen -= 1
            if not _frozen:
                gc.unfreeze()


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs (after an error or an interrupt) and let it unwind."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def run(call: Callable[[], T], workers: int, name: str = "requests") -> T:
    """``call()`` in a scheduler: the current one, or one of its own with ``workers``."""
    if current() is not None:
        return call()
    return Scheduler(workers, name).run([call])[0]


def run_side_by_side(
    calls: Sequence[Callable[[], T]],
    workers: int,
    name: str = "requests",
    delays: Sequence[float] | None = None,
) -> list[T]:
    """Every call side by side in one scheduler, their results in order (the first error
    raised is raised; a call that must not stop the others catches its own). ``delays``:
    seconds each call starts late."""
    if not calls:
        return []
    if current() is not None:
        pool = Pool(len(calls))
        delays = delays or [0.0] * len(calls)
        tasks = [
            pool.submit(_later, delay, call) for call, delay in zip(calls, delays, strict=True)
        ]
        try:
            return [_wait(task) for task in tasks]
        finally:
            pool.shutdown()
    return Scheduler(workers, name).run(calls, delays)


def _later(delay: float, call: Callable[[], T]) -> T:
    if delay > 0:
        sleep(delay)
    return call()


def staggered(intervals: Sequence[float]) -> list[float]:
    """Start delays that spread calls over their first interval: the i-th of n starts
    ``i / n`` of its own interval late (its pace's ``1 / rate``; 0 when unpaced).

    Accounts that all start at once and keep the same pace would send their requests
    together every interval, a burst that makes every request of the burst late by the
    time the others take; spread evenly, the same requests flow at a steady rate. It costs
    the last account at most one interval.
    """
    n = len(intervals)
    return [i / n * interval for i, interval in enumerate(intervals)]


def send(limiter: Limiter, exchange: Callable[[float], T]) -> T:
    """``exchange(slot time)`` once the limiter allows it: in a scheduler, on a shared
    worker with the wait a timer of the loop; outside one, in the calling thread."""
    scheduler = current()
    if scheduler is None:
        return exchange(limiter.acquire())
    return _wait(scheduler.send(limiter, exchange))


def sleep(seconds: float) -> None:
    """Pause the caller: a timer of the loop in a scheduler, ``time.sleep`` outside one."""
    if current() is None:
        time.sleep(seconds)
    else:
        _wait(asyncio.sleep(seconds))


class Pool:
    """At most ``limit`` of its calls run at once in the current scheduler (one account's
    requests in flight); the others wait their turn in the loop, costing no thread.

    :meth:`submit` returns an asyncio task: :func:`first_completed` waits for tasks,
    ``task.result()`` gives the call's result or raises its error.
    """

    def __init__(self, limit: int) -> None:
        scheduler = current()
        if scheduler is None:
            raise RuntimeError("a Pool runs inside a scheduler (see scheduler.run)")
        self._scheduler = scheduler
        self._slots = asyncio.Semaphore(max(1, limit))
        self._tasks: list[asyncio.Task[Any]] = []
        self._started: set[asyncio.Task[Any]] = set()

    def submit(self, call: Callable[..., T], *args: Any) -> asyncio.Task[T]:
        task: asyncio.Task[T]

        async def take_turn() -> T:
            async with self._slots:
                self._started.add(task)
                return await _run_sync(self._scheduler, call, *args)

        task = asyncio.get_running_loop().create_task(take_turn())
        self._tasks.append(task)
        return task

    def shutdown(self) -> None:
        """Cancel the calls that have not started; wait for those that have."""
        for task in self._tasks:
            if task not in self._started:
                task.cancel()
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            _wait(asyncio.wait(pending))
        for task in self._tasks:  # errors nobody asked for are not reported as lost
            if not task.cancelled():
                task.exception()


def first_completed(tasks: Iterable[asyncio.Task[T]]) -> set[asyncio.Task[T]]:
    """Wait (in the loop) until at least one of ``tasks`` is done; the done ones."""
    done, _ = _wait(asyncio.wait(list(tasks), return_when=asyncio.FIRST_COMPLETED))
    return done
