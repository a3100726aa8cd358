"""User.com: generated segments with cached counts and the ``GET .../segments/`` route."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import UserComApp
from .faults import Switches
from .model import Series, hash_uniform, make_series, stable_hash, to_counts
from .names import USERCOM_DEFAULTS, audience_name
from .responses import Request, Response, Route, json_response, redirect

if TYPE_CHECKING:
    from .world import World

PROVIDER = "usercom"
_PATH = re.compile(r"^/usercom/([^/]+)/api/public/segments(/?)$")
_MINUTES_PER_DAY = 1440
_SNAPSHOT_MINUTE = 12 * 60  # the emulator clock reads noon UTC of its date
_INTERVALS = np.array([30, 60, 120, 240, 480, 720, 1440])
_INTERVAL_P = np.array([0.05, 0.08, 0.1, 0.6, 0.08, 0.04, 0.05])
_NOT_PROVIDED = {"detail": "Authentication credentials were not provided."}
_AUTH_HEADERS = [("WWW-Authenticate", "Token")]
EXTRA_FIELD = ("segment_group", None)


@dataclass(frozen=True)
class UserComCatalog:
    key: str
    subdomain: str
    ids: np.ndarray
    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    interval: np.ndarray
    phase: np.ndarray
    stale: np.ndarray
    cycle: np.ndarray
    stuck_days: np.ndarray
    cycle_offset: np.ndarray
    too_heavy: np.ndarray
    heavy_day: np.ndarray
    series: Series
    index_of: dict[int, int]

    @property
    def n(self) -> int:
        return self.series.n


def build_catalog(seed: int, start_date: dt.date, app: UserComApp) -> UserComCatalog:
    n = app.n_segments
    key = f"{PROVIDER}/{app.subdomain}"
    rng = np.random.default_rng(np.random.SeedSequence([seed, stable_hash(key, "meta")]))
    ids = 1030 + np.cumsum(rng.integers(1, 4, n))
    names, descriptions = [], []
    for j in range(n):
        if j < len(USERCOM_DEFAULTS):
            name, desc = USERCOM_DEFAULTS[j]
        else:
            name = audience_name(j - len(USERCOM_DEFAULTS))
            desc = "" if j % 4 == 0 else f"{name.split(' - ')[0]} (managed segment)."
        names.append(name)
        descriptions.append(desc)
    interval = rng.choice(_INTERVALS, n, p=_INTERVAL_P)
    phase = (rng.random(n) * interval).astype(np.int64)
    too_heavy = rng.random(n) < 0.04
    stale = (rng.random(n) < 0.06) & ~too_heavy
    cycle = rng.integers(10, 26, n)
    stuck_days = rng.integers(3, 8, n)
    cycle_offset = rng.integers(0, 1000, n)
    heavy_day = start_date.toordinal() - rng.integers(20, 200, n)
    series = make_series(seed, key, n, start_date)
    series = dataclasses.replace(
        series, log_base=np.where(too_heavy, series.log_base + np.log(40.0), series.log_base)
    )
    index_of = {int(i): j for j, i in enumerate(ids)}
    return UserComCatalog(
        key, app.subdomain, ids, tuple(names), tuple(descriptions), interval, phase, stale,
        cycle, stuck_days, cycle_offset, too_heavy, heavy_day, series, index_of,
    )  # fmt: skip


def catalog(world: World, app: UserComApp) -> UserComCatalog:
    """The generated segments of ``app`` (built once)."""
    c = world.config
    return world.cached((PROVIDER, app), lambda: build_catalog(c.seed, c.start_date, app))


def _timestamp(minute: int, micros: int) -> str:
    day, minute_of_day = divmod(minute, _MINUTES_PER_DAY)
    moment = dt.datetime.fromordinal(day) + dt.timedelta(minutes=minute_of_day, microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_results(
    state: World,
    cat: UserComCatalog,
    idx: np.ndarray,
    day: int,
    api_base: str,
    extra: bool,
) -> list[dict[str, Any]]:
    """API results for segments ``idx`` as of day ordinal ``day`` (noon UTC)."""
    q = (day + cat.cycle_offset[idx]) % cat.cycle[idx]
    stuck = cat.stale[idx] & (q < cat.stuck_days[idx])
    ref_day = np.where(cat.too_heavy[idx], cat.heavy_day[idx], day - np.where(stuck, q, 0))
    ref = ref_day * _MINUTES_PER_DAY + _SNAPSHOT_MINUTE
    interval, phase = cat.interval[idx], cat.phase[idx]
    last = (ref - phase) // interval * interval + phase
    counts = to_counts(state.sizes(cat.key, cat.series, idx, last // _MINUTES_PER_DAY)).tolist()
    micros = (hash_uniform(cat.series.key, idx, last, salt=11) * 59e6).astype(np.int64)
    lag = 150 + (hash_uniform(cat.series.key, idx, last, salt=12) * 400).astype(np.int64)
    out = []
    rows = zip(
        idx.tolist(), counts, interval.tolist(), last.tolist(), micros.tolist(), lag.tolist(),
        strict=True,
    )  # fmt: skip
    for i, count, every, minute, us, lag_us in rows:
        seg_id = int(cat.ids[i])
        recounted = _timestamp(minute, us + lag_us)  # the recount's save touches updated_at
        edits = state.edits(cat.key, i)
        edited = f"{edits[-1]:%Y-%m-%dT%H:%M:%S.%f}Z" if edits else ""
        result = {
            "name": cat.names[i],
            "description": cat.descriptions[i],
            "users": f"{api_base}/segments/{seg_id}/users/",
            "id": seg_id,
            "object_count": count,
            "too_heavy": bool(cat.too_heavy[i]),
            "update_interval": every,
            "last_counted": _timestamp(minute, us),
            "updated_at": max(recounted, edited),  # ISO text of one width sorts as time
        }
        if extra:
            result[EXTRA_FIELD[0]] = EXTRA_FIELD[1]
        out.append(result)
    return out


def match(req: Request) -> Route | None:
    m = _PATH.match(req.path)
    if m is None:
        return None
    return Route(PROVIDER, "segments", m.group(1), ("" if m.group(2) else "no-slash",))


def api_base(origin: str, subdomain: str) -> str:
    return f"{origin}/usercom/{subdomain}/api/public"


def _authenticate(header: str | None, api_key: str) -> Response | None:
    if not header:
        return json_response(401, _NOT_PROVIDED, _AUTH_HEADERS)
    parts = header.split()
    if not parts or parts[0].lower() != "token":
        return json_response(401, _NOT_PROVIDED, _AUTH_HEADERS)
    if len(parts) == 1:
        detail = "Invalid token header. No credentials provided."
        return json_response(401, {"detail": detail}, _AUTH_HEADERS)
    if len(parts) > 2:
        detail = "Invalid token header. Token string should not contain spaces."
        return json_response(401, {"detail": detail}, _AUTH_HEADERS)
    if parts[1] != api_key:
        return json_response(401, {"detail": "Invalid token."}, _AUTH_HEADERS)
    return None


def _accept_version_ok(accept: str | None) -> bool:
    m = re.search(r"version\s*=\s*([^;,\s]+)", accept or "")
    return m is None or m.group(1) == "2"


def handle(state: World, req: Request, route: Route, sw: Switches) -> Response:
    base = api_base(req.origin, route.account or "")
    if route.params[0] == "no-slash":
        query = "&".join(f"{k}={v}" for k, vals in req.query.items() for v in vals)
        return redirect(301, f"{base}/segments/" + (f"?{query}" if query else ""))
    try:
        app = state.config.usercom_app(route.account or "")
    except KeyError:
        return json_response(404, {"detail": "Not found."})
    failure = _authenticate(req.headers.get("Authorization"), app.api_key)
    if failure is not None:
        return failure
    if not _accept_version_ok(req.headers.get("Accept")):
        return json_response(406, {"detail": 'Invalid version in "Accept" header.'})
    cat = catalog(state, app)
    day = state.day
    visible = state.visible(cat.key, cat.n, day)
    count = len(visible)
    pages = max(1, math.ceil(count / app.page_size))
    raw_page = req.arg("page") or "1"
    page = pages if raw_page == "last" else int(raw_page) if raw_page.isdigit() else 0
    if sw.pages_repeat and page > pages:
        page, next_page = pages, page + 1  # serves the last page again, links on forever
    else:
        next_page = None
    if not 1 <= page <= pages:
        return json_response(404, {"detail": "Invalid page."})
    idx = visible[(page - 1) * app.page_size : page * app.page_size]
    results = make_results(state, cat, idx, day, base, sw.extra_field)
    next_url = f"{base}/segments/?page={page + 1}" if page < pages else None
    if sw.next_loop and page == pages:
        next_url = f"{base}/segments/?page=1"
    if sw.pages_repeat and page == pages:
        next_url = f"{base}/segments/?page={next_page or page + 1}"
    if sw.next_foreign and page == 1:
        foreign = state.config.foreign_origin
        next_url = f"{foreign}/usercom/{app.subdomain}/api/public/segments/?page=2"
    previous = None
    if page == 2:
        previous = f"{base}/segments/"
    elif page > 2:
        previous = f"{base}/segments/?page={page - 1}"
    body = {"count": count, "next": next_url, "previous": previous, "results": results}
    return json_response(200, body, [("Vary", "Accept"), ("Allow", "GET, HEAD, OPTIONS")])


def truth(state: World, subdomain: str) -> list[dict[str, Any]]:
    """Every raw result a complete snapshot of ``subdomain`` must contain today."""
    app = state.config.usercom_app(subdomain)
    cat = catalog(state, app)
    day = state.day
    idx = state.visible(cat.key, cat.n, day)
    return make_results(state, cat, idx, day, api_base(state.public_url, subdomain), False)
