"""Shape checks for provider records, and the judgement of each record's own values.

Two kinds of wrong answer, kept apart:

* a body of the wrong *shape* (a list missing, an id or name of the wrong type) is a
  :class:`BadShape`: the whole answer is unreadable, so it is retried, then a clear error;
* a well-formed answer with one bad *record* is not retried (asking again returns the same
  record): the record's count is judged by :func:`judge_count` and its text repaired by
  :func:`repair_text`, after the answer was accepted. Fields of kind :data:`COUNT` are
  therefore left out of :func:`check_fields`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from segment_assets.providers.errors import BadShape

INT = "integer"
NUMBER = "number"
TEXT = "string"
BOOL = "boolean"
ANY = "any"
#: A record's user count: judged per record once the answer is accepted (see module doc).
COUNT = "count"

BIGINT_MAX = 2**63 - 1  # the largest count the tables can hold
_SURROGATES = re.compile("[\ud800-\udfff]")


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
        if kind == COUNT:
            continue
        if name not in record or record[name] is None:
            if name in nullable:
                continue
            ident = record.get("id", record.get("name", "?"))
            raise BadShape(f"record {ident!r} has no {name!r}")
        if not _is(record[name], kind):
            ident = record.get("id", record.get("name", "?"))
            article = "an" if kind[0] in "aeiou" else "a"
            raise BadShape(f"record {ident!r}: {name!r} is {record[name]!r}, not {article} {kind}")


def judge_count(value: Any) -> tuple[int | None, str | None]:
    """A count as the provider sent it → ``(count, None)``, or ``(None, why)`` when it cannot
    be trusted. ``None`` (null or missing) is ``(None, None)``: whether that is allowed is the
    caller's rule. An integral float (``1200.0``) is its integer."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return None, f"{value!r} is not an integer"
    if value < 0:
        return None, f"{value} is negative"
    if value > BIGINT_MAX:
        return None, f"{value} is too large to store"
    return value, None


def has_lone_surrogate(value: Any) -> bool:
    """True for text holding a lone UTF-16 surrogate (a string cut inside a character),
    which no UTF-8 store accepts."""
    return isinstance(value, str) and not value.isascii() and bool(_SURROGATES.search(value))


def repair_text(value: str) -> str:
    """``value`` with every lone surrogate replaced by U+FFFD (a split pair is rejoined)."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
