"""The environment: each provider's single account (``ONESIGNAL_API_KEY``,
``ONESIGNAL_APP_ID`` …) and the provider-wide defaults of every account (``<PREFIX>_BASE_URL``,
``<PREFIX>_MAX_RPS``, ``<PREFIX>_MAX_CONCURRENCY``), with the variables named in the registry.

Secrets and the settings that identify the account are passed as ``EnvVar``, so the UI shows
the variables' names and a run reads their values when it starts; the provider-wide
defaults are read now, held to the types of the resource fields they fill, and every
problem is listed in one :class:`ConfigurationError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import ValidationError

from segment_assets.config.errors import ConfigurationError, Problem, message, one_error
from segment_assets.config.settings import variables_model
from segment_assets.providers import registry


@dataclass(frozen=True)
class ProviderDefaults:
    """The provider-wide variables that are set: resource field → value, and → variable."""

    fields: dict[str, Any]
    variables: dict[str, str]


def provider_defaults(environ: Mapping[str, str] | None = None) -> dict[str, ProviderDefaults]:
    """Each provider's provider-wide variables, checked (an empty variable is unset).

    Raises ConfigurationError listing every variable that holds what its setting cannot take
    (``ONESIGNAL_MAX_RPS must be positive, got '-1'``).
    """
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    defaults: dict[str, ProviderDefaults] = {}
    for provider in registry.PROVIDERS:
        settings = {s.name: s for s in provider.wide_settings()}
        given = {
            name: value.strip()
            for name in settings
            if (value := env.get(provider.variable(name)) or "").strip()
        }
        try:
            checked = variables_model(provider).model_validate(given)
        except ValidationError as exc:
            problems += [(provider.variable(str(e["loc"][0])), message(e)) for e in exc.errors()]
            continue
        defaults[provider.name] = ProviderDefaults(
            fields={settings[n].target: getattr(checked, n) for n in given},
            variables={settings[n].target: provider.variable(n) for n in given},
        )
    if problems:
        raise one_error("the environment", problems, joiner=" ")
    return defaults


def provider_resources_from_env(
    environ: Mapping[str, str] | None = None,
    defaults: Mapping[str, ProviderDefaults] | None = None,
) -> dict[str, Any]:
    """The single-account resource of each provider, keyed by provider: its required
    settings as ``EnvVar`` (the UI shows names, never values), the provider-wide variables
    that are set (``defaults``, read from ``environ`` unless given), and the resource's
    defaults for the rest."""
    if defaults is None:
        defaults = provider_defaults(environ)
    resources = {}
    for provider in registry.PROVIDERS:
        required = {
            s.target: dg.EnvVar(provider.variable(s.name)) for s in provider.settings if s.required
        }
        resources[provider.name] = provider.resource(
            **required,
            **defaults[provider.name].fields,
            env_names=provider.single_account_variables(),
        )
    return resources


WORKERS_ENV = "SEGMENT_ASSETS_WORKERS"
DEFAULT_WORKERS = 64


def workers_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``SEGMENT_ASSETS_WORKERS``: the requests one provider step has in flight at once,
    across all its accounts (the threads of its scheduler's pool); default 64."""
    env = os.environ if environ is None else environ
    raw = (env.get(WORKERS_ENV) or "").strip()
    if not raw:
        return DEFAULT_WORKERS
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{WORKERS_ENV} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{WORKERS_ENV} must be positive, got {raw!r}")
    return value
