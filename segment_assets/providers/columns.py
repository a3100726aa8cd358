"""The shape of a table column, of a provider's count rule and of its definition-time
rule, and the columns they bring.

Each provider's own columns and count rule are part of its entry in
:mod:`segment_assets.providers.registry`; :mod:`segment_assets.providers.schema` puts a
provider's table together.
"""

from __future__ import annotations

import datetime as dt
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


@dataclass(frozen=True)
class DefinitionRule:
    """Where a provider says when a segment's definition (its filter, its name) last
    changed: the listing's ``field`` (``updated_at``), stored as
    :data:`DEFINITION_COLUMN`.

    ``recount_field`` names a time the provider also stamps when it merely recounts the
    segment (User.com saves a recount by touching ``updated_at`` a fraction of a second
    after ``last_counted``): a definition time from ``recount_window`` before to after it
    is that save, not a change of the definition, and is stored as NULL.
    """

    field: str
    recount_field: str | None = None
    recount_window: tuple[dt.timedelta, dt.timedelta] = (
        dt.timedelta(seconds=-1),
        dt.timedelta(minutes=5),
    )


DEFINITION_COLUMN = Column(
    "definition_updated_at",
    "TIMESTAMP",
    "When the segment's definition last changed, as the provider says (UTC); NULL when it "
    "does not say, sent no readable time, or the time is a recount's (see the problem "
    "column for the first two).",
)
