"""OneSignal: generated segments, the listing route and the view (count) route."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import OneSignalApp
from .fault_answers import ONESIGNAL_DENIED
from .faults import Switches
from .model import Series, make_series, stable_hash, to_counts
from .names import ONESIGNAL_DEFAULTS, ONESIGNAL_QUICKSTART, audience_name
from .responses import Request, Response, Route, json_response

if TYPE_CHECKING:
    from .world import World

PROVIDER = "onesignal"
MAX_LIMIT = 300
_LIST = re.compile(r"^/onesignal/apps/([^/]+)/segments/?$")
_VIEW = re.compile(r"^/onesignal/apps/([^/]+)/segments/([^/]+)/?$")
_NO_AUTH = {"errors": ["Please include a case-sensitive header of Authorization"]}
_NOT_FOUND = {"errors": ["segment not found"]}
USER_BASED_ERROR = (
    "User-based segments (with message event or custom event filters) are not yet supported "
    "via the API"
)
EXTRA_FIELD = ("segment_category", "standard")
_DAY = 86400
_UNIX_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()

_DEFAULT_FILTERS = {
    "Subscribed Users": [{"field": "session_count", "relation": ">", "value": "0"}],
    "Active Users": [{"field": "last_session", "relation": "<", "hours_ago": "168"}],
    "Engaged Users": [{"field": "session_count", "relation": ">", "value": "10"}],
    "Inactive Users": [{"field": "last_session", "relation": ">", "hours_ago": "168"}],
}
_FILTER_POOL = (
    {"field": "tag", "key": "level", "relation": ">", "value": "10"},
    {"field": "tag", "key": "plan", "relation": "exists"},
    {"field": "country", "relation": "=", "value": "PL"},
    {"field": "language", "relation": "=", "value": "en"},
    {"field": "session_count", "relation": ">", "value": "5"},
    {"field": "session_time", "relation": ">", "value": "600"},
    {"field": "last_session", "relation": "<", "hours_ago": "24"},
    {"field": "first_session", "relation": ">", "hours_ago": "720"},
    {"field": "app_version", "relation": "!=", "value": "1.2.0"},
    {"field": "location", "radius": "5000", "lat": "52.2297", "long": "21.0122"},
)
_DEFAULT_SHARES = np.array([1.0, 0.45, 0.15, 0.5])
_EVENTS = ("purchase", "add_to_cart", "level_complete", "subscription_renewed")


@dataclass(frozen=True)
class OneSignalCatalog:
    key: str
    app_id: str
    ids: tuple[str, ...]
    names: tuple[str, ...]
    descriptions: tuple[str | None, ...]
    sources: tuple[str, ...]
    created_at: tuple[int, ...]
    created_iso: tuple[str, ...]
    updated_iso: tuple[str, ...]
    read_only: tuple[bool, ...]
    user_based: np.ndarray
    deleted: np.ndarray
    series: Series
    index_of: dict[str, int]

    @property
    def n(self) -> int:
        return self.series.n


def _iso(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def build_catalog(seed: int, start_date: dt.date, app: OneSignalApp) -> OneSignalCatalog:
    n = app.n_segments
    key = f"{PROVIDER}/{app.app_id}"
    rng = np.random.default_rng(np.random.SeedSequence([seed, stable_hash(key, "meta")]))
    end = (start_date.toordinal() - _UNIX_EPOCH_ORDINAL) * _DAY
    born = end - 720 * _DAY
    n_default = min(n, len(ONESIGNAL_DEFAULTS))
    n_quick = min(n - n_default, len(ONESIGNAL_QUICKSTART))
    created = np.sort(rng.integers(born + 30 * _DAY, end - _DAY, n)) + np.arange(n)
    created[:n_default] = born + np.arange(n_default) * 7
    created = np.maximum.accumulate(created)
    updated = np.minimum(created + rng.integers(0, 200 * _DAY, n), end)
    names, sources, descriptions = [], [], []
    for j in range(n):
        if j < n_default:
            names.append(ONESIGNAL_DEFAULTS[j])
            sources.append("default")
        elif j < n_default + n_quick:
            names.append(ONESIGNAL_QUICKSTART[j - n_default])
            sources.append("quickstart")
        else:
            names.append(audience_name(j - n_default - n_quick))
            sources.append("custom")
        descriptions.append(None if j % 3 else f"{names[-1]} ({sources[-1]} segment)")
    custom = np.arange(n_default + n_quick, n)
    pool = custom if len(custom) >= app.n_user_based + app.n_deleted else np.arange(n)
    special = rng.choice(pool, app.n_user_based + app.n_deleted, replace=False)
    user_based = np.zeros(n, dtype=bool)
    user_based[special[: app.n_user_based]] = True
    deleted = np.zeros(n, dtype=bool)
    deleted[special[app.n_user_based :]] = True
    ids = tuple(str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n))
    return OneSignalCatalog(
        key=key,
        app_id=app.app_id,
        ids=ids,
        names=tuple(names),
        descriptions=tuple(descriptions),
        sources=tuple(sources),
        created_at=tuple(created.tolist()),
        created_iso=tuple(_iso(t) for t in created.tolist()),
        updated_iso=tuple(_iso(t) for t in updated.tolist()),
        read_only=tuple(s == "default" for s in sources),
        user_based=user_based,
        deleted=deleted,
        series=_series(seed, key, n, start_date, n_default),
        index_of={seg_id: j for j, seg_id in enumerate(ids)},
    )


def catalog(world: World, app: OneSignalApp) -> OneSignalCatalog:
    """The generated segments of ``app`` (built once)."""
    c = world.config
    return world.cached((PROVIDER, app), lambda: build_catalog(c.seed, c.start_date, app))


def _series(seed: int, key: str, n: int, start_date: dt.date, n_default: int) -> Series:
    """The count series, with the default segments sized like the app's whole audience."""
    series = make_series(seed, key, n, start_date)
    if n_default == 0:
        return series
    log_base = series.log_base.copy()
    audience = log_base.max() + np.log(1.5)
    log_base[:n_default] = audience + np.log(_DEFAULT_SHARES[:n_default])
    return dataclasses.replace(series, log_base=log_base)


def filters(cat: OneSignalCatalog, i: int) -> list[dict[str, Any]]:
    """The segment's filters in the documented create/update format."""
    if cat.names[i] in _DEFAULT_FILTERS and cat.sources[i] == "default":
        return [dict(f) for f in _DEFAULT_FILTERS[cat.names[i]]]
    rnd = random.Random(stable_hash(cat.key, i, "filters"))
    chosen = [dict(f) for f in rnd.sample(_FILTER_POOL, rnd.randint(1, 3))]
    if cat.user_based[i]:
        event = {
            "field": "custom_event",
            "name": rnd.choice(_EVENTS),
            "relation": "time_elapsed_lt",
            "hours_ago": "720",
            "unsupported_in_api": True,
        }
        chosen.insert(rnd.randint(0, len(chosen)), event)
    out: list[dict[str, Any]] = []
    for f in chosen:
        if out:
            out.append({"operator": "OR" if rnd.random() < 0.25 else "AND"})
        out.append(f)
    return out


def _edited(edits: list[dt.datetime]) -> list[dict[str, Any]]:
    """The conditions the segment's filter gained with each edit."""
    return [{"field": "session_count", "relation": ">", "value": str(n)} for n in range(len(edits))]


def _listing_record(state: World, cat: OneSignalCatalog, i: int, extra: bool) -> dict[str, Any]:
    edits = state.edits(cat.key, i)
    updated = f"{edits[-1]:%Y-%m-%dT%H:%M:%S}.000Z" if edits else cat.updated_iso[i]
    record = {
        "id": cat.ids[i],
        "name": cat.names[i],
        "created_at": cat.created_iso[i],
        "updated_at": updated,
        "app_id": cat.app_id,
        "read_only": cat.read_only[i],
        "is_active": True,
    }
    if extra:
        record[EXTRA_FIELD[0]] = EXTRA_FIELD[1]
    return record


def payload(state: World, cat: OneSignalCatalog, i: int) -> dict[str, Any]:
    condition = [c for e in _edited(state.edits(cat.key, i)) for c in ({"operator": "AND"}, e)]
    return {
        "id": cat.ids[i],
        "name": cat.names[i],
        "description": cat.descriptions[i],
        "created_at": cat.created_at[i],
        "source": cat.sources[i],
        "filters": filters(cat, i) + condition,
    }


def match(req: Request) -> Route | None:
    m = _LIST.match(req.path)
    if m:
        return Route(PROVIDER, "list", m.group(1))
    m = _VIEW.match(req.path)
    if m:
        return Route(PROVIDER, "view", m.group(1), (m.group(2),))
    return None


def _int_arg(req: Request, name: str, default: int) -> int | None:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    return int(raw) if re.fullmatch(r"\d+", raw.strip()) else None


def handle(state: World, req: Request, route: Route, sw: Switches) -> Response:
    auth = req.headers.get("Authorization")
    if auth is None:
        return json_response(400, _NO_AUTH)
    app = next((a for a in state.config.onesignal if a.app_id == route.account), None)
    if app is None or auth != f"Key {app.api_key}":
        return json_response(403, ONESIGNAL_DENIED)
    cat = catalog(state, app)
    if route.endpoint == "list":
        return _list(state, req, cat, sw)
    return _view(state, req, cat, route.params[0], sw)


def _list(state: World, req: Request, cat: OneSignalCatalog, sw: Switches) -> Response:
    offset = _int_arg(req, "offset", 0)
    limit = _int_arg(req, "limit", MAX_LIMIT)
    if offset is None:
        return json_response(400, {"errors": ["offset must be a non-negative integer"]})
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        return json_response(400, {"errors": [f"limit must be between 1 and {MAX_LIMIT}"]})
    visible = state.visible(cat.key, cat.n, state.day)
    width = max(1, limit - 7) if sw.short_pages else limit
    shown = visible[offset : offset + width]
    rows = [_listing_record(state, cat, i, sw.extra_field) for i in shown]
    body = {"total_count": len(visible), "offset": offset, "limit": limit, "segments": rows}
    return json_response(200, body)


def _view(
    state: World, req: Request, cat: OneSignalCatalog, segment_id: str, sw: Switches
) -> Response:
    day = state.day
    i = cat.index_of.get(segment_id)
    if i is None or cat.deleted[i] or state.is_removed(cat.key, i, day):
        return json_response(404, _NOT_FOUND)
    if cat.user_based[i]:
        return json_response(400, {"errors": [USER_BASED_ERROR]})
    idx = np.array([i])
    count = int(to_counts(state.sizes(cat.key, cat.series, idx, day))[0])
    body: dict[str, Any] = {"subscriber_count": count}
    if (req.arg("include-segment-detail") or "").lower() in ("true", "1"):
        body["payload"] = payload(state, cat, i)
        if sw.extra_field:
            body["payload"][EXTRA_FIELD[0]] = EXTRA_FIELD[1]
    if sw.extra_field:
        body["estimated"] = False
    return json_response(200, body)


def truth(state: World, app_id: str) -> list[dict[str, Any]]:
    """One dict per listed segment whose view does not 404, in listing order."""
    app = state.config.onesignal_app(app_id)
    cat = catalog(state, app)
    day = state.day
    idx = state.visible(cat.key, cat.n, day)
    idx = idx[~cat.deleted[idx]]
    counts = to_counts(state.sizes(cat.key, cat.series, idx, day)).tolist()
    out = []
    for i, count in zip(idx.tolist(), counts, strict=True):
        user_based = bool(cat.user_based[i])
        row = payload(state, cat, i)
        listed = _listing_record(state, cat, i, False)
        out.append(
            {
                "id": row["id"],
                "name": row["name"],
                "subscriber_count": None if user_based else count,
                "user_based": user_based,
                "description": row["description"],
                "source": row["source"],
                "created_at": row["created_at"],
                "filters": row["filters"],
                "updated_at": listed["updated_at"],
                "read_only": listed["read_only"],
                "is_active": listed["is_active"],
            }
        )
    return out
