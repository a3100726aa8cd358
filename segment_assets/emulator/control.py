"""The ``/_emulator/*`` control endpoints (JSON in, JSON out; never faulted)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .responses import Request, Response, json_response, not_found

if TYPE_CHECKING:
    from .state import EmulatorState

PREFIX = "/_emulator/"


def handle(state: EmulatorState, req: Request, body: bytes) -> Response:
    """Dispatch one control request; bad input answers 400 ``{"error": ...}``."""
    action = req.path[len(PREFIX) :].strip("/")
    try:
        data: dict[str, Any] = json.loads(body) if body.strip() else {}
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return _dispatch(state, req, action, data)
    except (ValueError, KeyError, TypeError) as exc:
        return json_response(400, {"error": str(exc)})


def _dispatch(state: EmulatorState, req: Request, action: str, data: dict[str, Any]) -> Response:
    get, post = req.method == "GET", req.method == "POST"
    if action == "health" and get:
        return json_response(200, {"ok": True, "date": state.today.isoformat()})
    if action == "date" and get:
        return json_response(200, {"date": state.today.isoformat()})
    if action == "date" and post:
        state.set_date(data["date"])
        return json_response(200, {"date": state.today.isoformat()})
    if action == "faults" and get:
        return json_response(200, state.faults())
    if action == "faults" and post:
        provider = data.pop("provider")
        state.set_faults(provider, data.pop("account", None), **data)
        return json_response(200, {"ok": True})
    if action == "clear" and post:
        state.clear_faults(data.get("provider"))
        if data.get("changes"):
            state.clear_changes()
        return json_response(200, {"ok": True})
    if action == "drop" and post:
        state.plant_drop(**data)
        return json_response(200, {"ok": True})
    if action == "edit" and post:
        state.edit_definition(**data)
        return json_response(200, {"ok": True})
    if action == "remove" and post:
        state.remove_segment(**data)
        return json_response(200, {"ok": True})
    if action == "view-rate-limit" and post:
        state.set_view_rate_limit(data.get("rps"), int(data.get("burst", 1)))
        return json_response(200, {"ok": True})
    if action == "stats" and get:
        return json_response(200, state.stats())
    if action == "stats/reset" and post:
        state.reset_stats()
        return json_response(200, {"ok": True})
    if action == "truth" and get:
        provider = req.arg("provider") or ""
        min_weight = float(req.arg("min_weight") or 0.5)
        return json_response(200, state.truth(provider, req.arg("account"), min_weight))
    return not_found()
