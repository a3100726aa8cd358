"""Raising pydantic's errors again from a wrap validator, with problems of one's own."""

from __future__ import annotations

import typing
from collections.abc import Callable

from pydantic import ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, core_schema

_KNOWN = frozenset(typing.get_args(core_schema.ErrorType))


def again(error: ErrorDetails) -> InitErrorDetails:
    """An error caught from a validator, to raise again in a ValidationError: a rule's own
    words (a :class:`PydanticCustomError`) are kept as they were."""
    kind: typing.Any = error["type"]
    if kind not in _KNOWN:
        kind = PydanticCustomError(kind, error["msg"])
    details = InitErrorDetails(type=kind, loc=error["loc"], input=error["input"])
    if "ctx" in error and not isinstance(kind, PydanticCustomError):
        details["ctx"] = error["ctx"]
    return details


def validated(
    handler: Callable[[typing.Any], typing.Any],
    data: typing.Any,
    problems: list[InitErrorDetails],
    title: str,
) -> typing.Any:
    """``handler(data)`` — a wrap validator's own validation — raising one ValidationError
    (``title``) with its errors followed by ``problems`` when there are any, so every
    problem of the value is reported at once."""
    try:
        value = handler(data)
    except ValidationError as exc:
        problems = [again(e) for e in exc.errors()] + problems
    if problems:
        raise ValidationError.from_exception_data(title, problems)
    return value
