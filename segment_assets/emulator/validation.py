"""FastAPI/pydantic-style query validation used by the ActionHub emulation."""

from __future__ import annotations

from typing import Any

_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def _error(loc: list[str], typ: str, msg: str, value: Any, ctx: dict | None = None) -> dict:
    err: dict[str, Any] = {"type": typ, "loc": loc, "msg": msg, "input": value}
    if ctx:
        err["ctx"] = ctx
    return err


def missing(loc: list[str]) -> dict:
    return _error(loc, "missing", "Field required", None)


class QueryValidator:
    """Collects every error, as FastAPI does, while converting query values."""

    def __init__(self, query: dict[str, list[str]]) -> None:
        self.query = query
        self.errors: list[dict] = []

    def _raw(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw in allowed:
            return raw
        quoted = [f"'{a}'" for a in allowed]
        expected = ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        self.errors.append(
            _error(
                ["query", name], "enum", f"Input should be {expected}", raw, {"expected": expected}
            )
        )
        return default

    def number(self, name: str, default: float, ge: float, le: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            msg = "Input should be a valid number, unable to parse string as a number"
            self.errors.append(_error(["query", name], "float_parsing", msg, raw))
            return default
        return self._bounds(name, value, raw, ge, le, default)

    def integer(self, name: str, default: int, ge: int, le: int | None = None) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            msg = "Input should be a valid integer, unable to parse string as an integer"
            self.errors.append(_error(["query", name], "int_parsing", msg, raw))
            return default
        return int(self._bounds(name, value, raw, ge, le, default))

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        msg = "Input should be a valid boolean, unable to interpret input"
        self.errors.append(_error(["query", name], "bool_parsing", msg, raw))
        return default

    def _bounds(self, name: str, value: float, raw: str, ge: float, le: float | None, default):
        if not value >= ge:
            msg = f"Input should be greater than or equal to {ge}"
            self.errors.append(_error(["query", name], "greater_than_equal", msg, raw, {"ge": ge}))
            return default
        if le is not None and not value <= le:
            msg = f"Input should be less than or equal to {le}"
            self.errors.append(_error(["query", name], "less_than_equal", msg, raw, {"le": le}))
            return default
        return value
