"""Shape checks for provider records: a wrong type is a :class:`BadShape` (retried, then a
clear error), never a silently wrong row."""

from __future__ import annotations

from typing import Any

from segment_assets.http import BadShape

INT = "integer"
NUMBER = "number"
TEXT = "string"
BOOL = "boolean"
ANY = "any"


def _is(value: Any, kind: str) -> bool:
    if kind == ANY:
        return True
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == TEXT:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    raise ValueError(kind)


def check_fields(
    record: dict[str, Any], required: dict[str, str], nullable: frozenset[str] = frozenset()
) -> None:
    """Raise BadShape unless every ``required`` field is present with its kind.

    Fields in ``nullable`` may be null or absent. Extra fields are ignored.
    """
    for name, kind in required.items():
        if name not in record or record[name] is None:
            if name in nullable:
                continue
            ident = record.get("id", record.get("name", "?"))
            raise BadShape(f"record {ident!r} has no {name!r}")
        if not _is(record[name], kind):
            ident = record.get("id", record.get("name", "?"))
            article = "an" if kind[0] in "aeiou" else "a"
            raise BadShape(f"record {ident!r}: {name!r} is {record[name]!r}, not {article} {kind}")
