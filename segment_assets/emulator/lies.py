"""Well-formed answers that are wrong: what a provider may send that parses fine yet loses
segments or spoils one record. Switched on per provider (and account) like the other faults
(``faults.Switches``); applied to a handled answer before the transport faults.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import onesignal
from .responses import Response, dumps, html_response, json_response

if TYPE_CHECKING:
    from .faults import Switches
    from .responses import Route
    from .world import World

_LIST_KEYS = ("items", "results", "segments")
_TOTAL_KEYS = ("total", "count", "total_count")
_COUNT_KEYS = ("user_count", "object_count", "subscriber_count")
_ID_KEYS = ("id", "segment_basis_id")
_PROXY_404 = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def tell(state: World, route: Route, sw: Switches, resp: Response) -> Response:
    """``resp`` as the switched-on lies would have it."""
    is_view = route.provider == "onesignal" and route.endpoint == "view"
    if sw.view_404 and is_view and _chosen(state, route, sw.view_404_share):
        return view_404(sw.view_404)
    if sw.user_based_error and route.provider == "onesignal" and resp.status == 400:
        errors = (resp.data or {}).get("errors") if isinstance(resp.data, dict) else None
        if errors and "not yet supported" in errors[0]:
            return json_response(400, {"errors": [sw.user_based_error]})
    if resp.status != 200 or not isinstance(resp.data, dict):
        return resp
    if sw.empty_listing and any(isinstance(resp.data.get(k), list) for k in _LIST_KEYS):
        return _rewritten(resp, _emptied(resp.data))
    if sw.bad_record:
        data = _spoiled(resp.data, route, sw.bad_record, sw.bad_record_id)
        if data is not None:
            return _rewritten(resp, data)
    return resp


def view_404(kind: str) -> Response:
    """A OneSignal view's 404: the documented deletion, a wrong app, or a proxy's page."""
    if kind == "segment":
        return json_response(404, {"errors": ["segment not found"]})
    if kind == "app":
        return json_response(404, {"errors": ["app not found"], "success": False})
    return html_response(404, _PROXY_404)


def _chosen(state: World, route: Route, share: float) -> bool:
    """Whether this view's segment is among the first ``share`` of every run of segments:
    exactly ``floor(n × share)`` of an app's first ``n`` catalog segments are chosen."""
    try:
        app = state.config.onesignal_app(route.account or "")
    except KeyError:
        return True
    index = onesignal.catalog(state, app).index_of.get(route.params[0])
    if index is None:
        return True
    return math.floor((index + 1) * share) > math.floor(index * share)


def _rewritten(resp: Response, data: dict[str, Any]) -> Response:
    return Response(200, dumps(data), resp.content_type, resp.headers, data=data)


def _emptied(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key in _LIST_KEYS:
        if isinstance(out.get(key), list):
            out[key] = []
    for key in _TOTAL_KEYS:
        if key in out:
            out[key] = 0
    if "next" in out:
        out["next"] = None
    return out


def _spoiled(data: dict[str, Any], route: Route, kind: str, target: str) -> dict[str, Any] | None:
    """``data`` with the target's records spoiled, or None when it holds none of them."""
    records = next((data[k] for k in _LIST_KEYS if isinstance(data.get(k), list)), None)
    if records is not None:
        hits = [i for i, r in enumerate(records) if _is_target(r, target)]
        if not hits:
            return None
        out = dict(data)
        out_records = list(records)
        for i in hits:
            out_records[i] = spoil(dict(records[i]), kind)
        out[next(k for k in _LIST_KEYS if isinstance(data.get(k), list))] = out_records
        return out
    if route.params and route.params[0] == target:  # a OneSignal view of the target
        out = spoil(dict(data), kind)
        if isinstance(data.get("payload"), dict) and kind == "surrogate-name":
            out["payload"] = spoil(dict(data["payload"]), kind)
        return out
    return None


def _is_target(record: Any, target: str) -> bool:
    return isinstance(record, dict) and any(str(record.get(k)) == target for k in _ID_KEYS)


def spoil(record: dict[str, Any], kind: str) -> dict[str, Any]:
    """One record spoiled the way ``kind`` says (see ``faults.BAD_RECORD_KINDS``)."""
    if kind == "surrogate-name":
        if isinstance(record.get("name"), str):
            record["name"] = record["name"][:12] + "\ud83d"
        return record
    if kind.endswith("-updated-at"):  # a listing record's optional time (views have none)
        if "updated_at" in record:
            if kind == "missing-updated-at":
                del record["updated_at"]
            else:
                record["updated_at"] = "0000-00-00 00:00:00"
        return record
    key = next((k for k in _COUNT_KEYS if k in record), None)
    if key is None:
        return record
    if kind == "negative-count":
        record[key] = -5
    elif kind == "fraction-count":
        record[key] = 12.5
    elif kind == "text-count":
        record[key] = "lots"
    elif kind == "null-count":
        record[key] = None
    elif kind == "missing-count":
        del record[key]
    elif kind == "uncountable":
        record[key] = None
        record["too_heavy"] = True
    return record
