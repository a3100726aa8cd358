"""The resource of each provider: the accounts of the accounts file, or the single account
of the environment for a provider the file does not list (or when there is no file)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from segment_assets.config.accounts_file import AccountSpec, load_accounts
from segment_assets.config.environment import (
    ProviderDefaults,
    provider_defaults,
    provider_resources_from_env,
)
from segment_assets.providers import registry


def account_resource(
    spec: AccountSpec,
    path: str,
    environ: Mapping[str, str],
    defaults: ProviderDefaults | None = None,
) -> Any:
    """The resource of one account: settings written in the file as given, those named by a
    variable as ``EnvVar`` (the UI shows the variable's name), the provider-wide variables
    (``<PREFIX>_BASE_URL``, ``_MAX_RPS``, ``_MAX_CONCURRENCY``) as defaults; errors name the
    variable or the file's setting to fix."""
    provider = registry.get(spec.provider)
    if defaults is None:
        defaults = provider_defaults(environ)[provider.name]
    fields: dict[str, Any] = dict(defaults.fields)
    env_names: dict[str, str] = {}
    for setting in provider.settings:
        field = setting.target
        if setting.name in spec.variables:
            fields[field] = dg.EnvVar(spec.variables[setting.name])
            env_names[field] = spec.variables[setting.name]
        elif setting.name in spec.values:
            fields[field] = spec.values[setting.name]
            env_names[field] = f"{spec.where(setting.name)} in {path}"
        else:
            env_names[field] = defaults.variables.get(
                field, f"{spec.where(setting.name)} in {path}"
            )
    return provider.resource(
        name=spec.name,
        label_text=spec.label if spec.label != spec.name else "",
        env_names=env_names,
        **fields,
    )


def provider_resources(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resource of each provider, keyed by provider: the accounts of the accounts file,
    or the single account of the ``<PREFIX>_…`` variables for a provider the file does not
    list (or when there is no file)."""
    env = dict(os.environ if environ is None else environ)
    accounts = load_accounts(env)
    defaults = provider_defaults(env)
    resources = provider_resources_from_env(env, defaults)
    if accounts is None:
        return resources
    for name, specs in accounts.providers.items():
        provider = registry.get(name)
        resources[name] = provider.accounts(
            accounts=[account_resource(s, accounts.path, env, defaults[name]) for s in specs]
        )
    return resources
