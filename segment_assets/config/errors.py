"""Configuration problems in words: pydantic's errors as ``where: what to fix``, and every
problem of a source listed in one :class:`ConfigurationError`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic_core import ErrorDetails

from segment_assets.config.detection_file import detection_problem, is_detection_error
from segment_assets.providers import registry
from segment_assets.providers.errors import ConfigurationError

__all__ = ["ConfigurationError", "Problem", "explain", "one_error"]

#: A problem and where it is: ``("onesignal.mobile.api_key_env", "the variable … is not set")``.
Problem = tuple[str, str]

ENV_SUFFIX = "_env"
ACCOUNT_NAME_RULE = (
    "an account name is a letter then letters, digits, '_' or '-' (at most 40), e.g. brand_a"
)
# what a value must be, by pydantic's error type (a setting of any source)
_MUST_BE = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "string_type": "text",
    "string_too_short": "some text",
    "finite_number": "a finite number",
}


def message(error: ErrorDetails, show_input: bool = True) -> str:
    """What is wrong with one value, as ``must …`` or the rule's own words; the value is
    shown unless it may be a secret (what was written where a variable's name belongs)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    got = f", got {error['input']!r}" if show_input else ""
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "greater_than":
        bound = ctx["gt"]
        return ("must be positive" if bound == 0 else f"must be more than {bound}") + got
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}{got}"
    if kind in ("less_than", "less_than_equal"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}{got}"
    if kind in _MUST_BE:
        return f"must be {_MUST_BE[kind]}{got}"
    return error["msg"]  # a rule's own words (a PydanticCustomError) or pydantic's


def explain(errors: Iterable[ErrorDetails]) -> list[Problem]:
    """The accounts file's errors as ``(path, message)``: the path is where in the file
    (``onesignal.mobile.max_rps``), the message what to fix. An account whose name is
    malformed is reported by its name only."""
    errors = list(errors)
    bad_names = {e["loc"][:2] for e in errors if e["loc"][2:3] == ("[key]",)}
    problems = []
    for error in errors:
        loc = tuple(str(part) for part in error["loc"])
        if loc[:2] in bad_names and loc[2:3] != ("[key]",):
            continue  # fix the name first
        if is_detection_error(loc):
            problems.append(detection_problem(error["loc"], error))
            continue
        problems.append(_file_problem(loc, error))
    return problems


def _file_problem(loc: tuple[str, ...], error: ErrorDetails) -> Problem:
    kind = error["type"]
    if not loc:
        return "", "the file must map provider names to their accounts"
    if len(loc) == 1:
        provider = loc[0]
        if kind == "extra_forbidden":
            names = ", ".join(registry.NAMES)
            return provider, f"unknown provider {provider!r}; the providers are {names}"
        return provider, (
            f"expected accounts by name (e.g. '{provider}: {{brand_a: …}}'), "
            f"got {type(error['input']).__name__}"
        )
    account = ".".join(loc[:2])
    if loc[2:3] == ("[key]",):
        return account, ACCOUNT_NAME_RULE
    if len(loc) == 2:
        if kind in ("model_type", "dict_type"):
            return account, f"expected its settings (api_key_env: …), got {error['input']!r}"
        return account, message(error)
    if kind == "extra_forbidden":
        return account, _unknown_setting(loc[0], loc[2])
    # a value where a variable's name belongs may be the secret itself: never repeat it
    return ".".join(loc), message(error, show_input=not loc[-1].endswith(ENV_SUFFIX))


def _unknown_setting(provider: str, key: str) -> str:
    settings = sorted(s.name for s in registry.get(provider).settings)
    return (
        f"unknown setting {key!r}; {provider} accounts take {', '.join(settings)} "
        "(text settings also as <setting>_env), label and detection"
    )


def one_error(what: str, problems: Sequence[Problem], joiner: str = ": ") -> ConfigurationError:
    """One error listing every problem of ``what`` (``the accounts file x.yaml``); a single
    problem of the environment stands alone."""
    lines = [f"{where}{joiner}{text}" if where else text for where, text in problems]
    if len(lines) == 1 and what == "the environment":
        return ConfigurationError(lines[0])
    listing = "\n".join(f"  - {line}" for line in lines)
    return ConfigurationError(f"{what} has {len(lines)} problem(s):\n{listing}")
