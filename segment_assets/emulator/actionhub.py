"""ActionHub: generated segment lists and the ``GET /actionhub/segments`` route."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import ActionHubProgram
from .faults import Switches
from .model import Series, hash_normal, make_series, stable_hash, to_counts
from .names import asset_name, label_name
from .responses import Request, Response, Route, json_response
from .validation import QueryValidator, missing

if TYPE_CHECKING:
    from .world import World

PROVIDER = "actionhub"
PATH = "/actionhub/segments"
SEGMENT_TYPES: tuple[str, ...] = ("growth", "base", "discovery")
SEGMENT_BASES: tuple[str, ...] = ("labels", "assets")
BASIS_FIELD = {"labels": "label", "assets": "asset"}
BASIS_PREFIX = {"labels": "lbl", "assets": "ast"}
_TYPE_SCALE = {"growth": 1.0, "base": 1.6, "discovery": 0.4}
_BAD_KEY = {"detail": "Could not validate API KEY"}
EXTRA_FIELD = ("segment_version", 2)
_ID_LAYOUTS = {
    1: ("segment_basis_id",),
    2: ("segment_basis_id", "action_type"),
    4: ("segment_type", "segment_basis", "segment_basis_id", "action_type"),
}


@dataclass(frozen=True)
class SegmentList:
    """One (program, segment_type, segment_basis) list."""

    key: str
    segment_type: str
    segment_basis: str
    action_types: tuple[str, ...]
    series: Series
    exponent: np.ndarray
    strength: np.ndarray
    names: tuple[str, ...]

    @property
    def n(self) -> int:
        return self.series.n


def list_key(program_id: str, segment_type: str, segment_basis: str) -> str:
    return f"{PROVIDER}/{program_id}/{segment_type}/{segment_basis}"


def build_list(
    seed: int, start_date: dt.date, program: ActionHubProgram, segment_type: str, basis: str
) -> SegmentList:
    n = program.segments_per_list
    key = list_key(program.program_id, segment_type, basis)
    series = make_series(seed, key, n, start_date, _TYPE_SCALE[segment_type])
    rng = np.random.default_rng(np.random.SeedSequence([seed, stable_hash(key, "weights")]))
    exponent = rng.uniform(0.8, 2.5, n)
    strength = rng.uniform(0.15, 0.6, n)
    namer = label_name if basis == "labels" else asset_name
    names = tuple(namer(j) for j in range(math.ceil(n / len(program.action_types))))
    return SegmentList(
        key, segment_type, basis, program.action_types, series, exponent, strength, names
    )


def segment_list(
    world: World, program: ActionHubProgram, segment_type: str, basis: str
) -> SegmentList:
    """The generated list of ``program`` for ``segment_type`` and ``basis`` (built once)."""
    c = world.config
    return world.cached(
        (PROVIDER, program, segment_type, basis),
        lambda: build_list(c.seed, c.start_date, program, segment_type, basis),
    )


def make_items(
    lst: SegmentList, idx: np.ndarray, sizes: np.ndarray, day: int, min_weight: float, extra: bool
) -> list[dict[str, Any]]:
    """API items for segments ``idx``; ``sizes`` are their sizes at the reference weight 0.5."""
    factor = ((1.0 - min_weight) / 0.5) ** lst.exponent[idx]
    counts = to_counts(sizes * factor).tolist()
    jitter = 0.004 * hash_normal(lst.series.key, idx, day, salt=7)
    strength = np.clip(lst.strength[idx] + jitter, 0.01, 0.99)
    strength = (min_weight + (1.0 - min_weight) * strength).round(4).tolist()
    n_actions = len(lst.action_types)
    prefix = BASIS_PREFIX[lst.segment_basis]
    basis_field = BASIS_FIELD[lst.segment_basis]
    out = []
    for i, count, s in zip(idx.tolist(), counts, strength, strict=True):
        j, action = divmod(i, n_actions)
        item = {
            "segment_type": lst.segment_type,
            "segment_basis": basis_field,
            "segment_basis_id": f"{prefix}-{j}",
            "action_type": lst.action_types[action],
            "name": f"{lst.names[j]} · {lst.action_types[action]}",
            "user_count": count,
            "strength": s,
            "min_weight": min_weight,
        }
        if extra:
            item[EXTRA_FIELD[0]] = EXTRA_FIELD[1]
        out.append(item)
    return out


def resolve(program: ActionHubProgram, segment_id: Any) -> list[tuple[str, int]]:
    """(list key, index) pairs named by ``segment_id``.

    Accepted forms: a dict with ``segment_basis_id`` and optionally ``action_type``,
    ``segment_type``, ``segment_basis``; a 4-tuple (type, basis, basis_id, action); or a
    string "type/basis/basis_id/action", "basis_id/action" or "basis_id" (``:`` or ``|``
    also separate). Missing parts match every list or action type.
    """
    if isinstance(segment_id, dict):
        parts = {k: segment_id.get(k) for k in ("segment_type", "segment_basis", "action_type")}
        basis_id = segment_id.get("segment_basis_id")
    else:
        if isinstance(segment_id, tuple | list):
            seq = [str(x) for x in segment_id]
        else:
            seq = re.split(r"[/:|]", str(segment_id))
        layout = _ID_LAYOUTS.get(len(seq))
        if layout is None:
            raise ValueError(f"cannot read ActionHub segment id {segment_id!r}")
        parts = dict(zip(layout, seq, strict=True))
        basis_id = parts.pop("segment_basis_id")
    m = re.fullmatch(r"(lbl|ast)-(\d+)", str(basis_id or ""))
    if not m:
        raise ValueError(f"cannot read ActionHub segment_basis_id {basis_id!r}")
    basis = "labels" if m.group(1) == "lbl" else "assets"
    wanted_basis = parts.get("segment_basis")
    if wanted_basis and wanted_basis.rstrip("s") + "s" != basis:
        raise ValueError(f"segment_basis {wanted_basis!r} does not match {basis_id!r}")
    actions = program.action_types
    if parts.get("action_type") and parts["action_type"] not in actions:
        raise KeyError(f"unknown action_type {parts['action_type']!r}")
    out = []
    for seg_type in SEGMENT_TYPES:
        if parts.get("segment_type") not in (None, seg_type):
            continue
        for a, action in enumerate(actions):
            if parts.get("action_type") in (None, action):
                index = int(m.group(2)) * len(actions) + a
                if index < program.segments_per_list:
                    out.append((list_key(program.program_id, seg_type, basis), index))
    if not out:
        raise KeyError(f"unknown ActionHub segment {segment_id!r}")
    return out


def match(req: Request) -> Route | None:
    if req.path == PATH:
        return Route(PROVIDER, "segments", req.headers.get("program-id") or None)
    return None


def handle(state: World, req: Request, route: Route, sw: Switches) -> Response:
    key = req.headers.get("actionhub-key")
    programs = {p.program_id: p for p in state.config.actionhub if key and p.api_key == key}
    if not programs:
        return json_response(403, _BAD_KEY)
    v = QueryValidator(req.query)
    segment_type = v.choice("segment_type", SEGMENT_TYPES, "growth")
    basis = v.choice("segment_basis", SEGMENT_BASES, "labels")
    min_weight = v.number("min_weight", 0.5, 0.0, 1.0)
    recount = v.boolean("force_refresh", False)
    page = v.integer("page", 1, 1)
    size = v.integer("size", 50, 1, 100)
    if route.account is None:
        v.errors.insert(0, missing(["header", "program-id"]))
    if v.errors:
        return json_response(422, {"detail": v.errors})
    program = programs.get(route.account or "")
    if program is None:
        return json_response(403, _BAD_KEY)
    if recount:
        state.tally(PROVIDER, "recounts")
    lst = segment_list(state, program, segment_type, basis)
    day = state.day
    visible = state.visible(lst.key, lst.n, day)
    total = len(visible)
    start = (page - 1) * size
    if sw.repeat_item and page >= 2 and total > size:
        start -= 1  # the last item of page 1 shows up again at the top of page 2
    idx = visible[start : start + size] if start < total else visible[:0]
    sizes = state.sizes(lst.key, lst.series, idx, day)
    items = make_items(lst, idx, sizes, day, min_weight, sw.extra_field)
    reported = max(0, total - sw.total_drift) if page == 1 else total
    reported += sw.total_extra
    return json_response(200, {"items": items, "total": reported, "page": page, "size": size})


def truth(state: World, program_id: str, min_weight: float = 0.5) -> list[dict[str, Any]]:
    """Every item a complete snapshot of ``program_id`` must contain today (all 6 lists)."""
    program = state.config.actionhub_program(program_id)
    day = state.day
    out: list[dict[str, Any]] = []
    for segment_type in SEGMENT_TYPES:
        for basis in SEGMENT_BASES:
            lst = segment_list(state, program, segment_type, basis)
            idx = state.visible(lst.key, lst.n, day)
            sizes = state.sizes(lst.key, lst.series, idx, day)
            out.extend(make_items(lst, idx, sizes, day, min_weight, False))
    return out
