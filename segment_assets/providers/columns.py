"""The shape of a table column and of a provider's count rule, and the column every
provider table ends with.

Each provider's own columns and count rule are part of its entry in
:mod:`segment_assets.providers.registry`; :mod:`segment_assets.providers.schema` puts a
provider's table together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    description: str


@dataclass(frozen=True)
class CountRule:
    """Where a provider's count comes from and when it may be missing.

    ``field`` is the provider's own name for it; the count may be null only on a row whose
    ``uncountable_when`` column equals ``uncountable_value`` (the provider said it cannot
    count that segment). Without such a column, every segment must have a count.
    """

    field: str
    uncountable_when: str | None = None
    uncountable_value: bool = True


PROBLEM_COLUMN = Column(
    "problem",
    "VARCHAR",
    "What could not be trusted in this record as the provider sent it (a count stored as "
    "NULL, text repaired); NULL when nothing.",
)
