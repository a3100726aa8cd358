"""Which account a person means: the accounts file's name for it (``web``) or the store's
account id (the ``account`` column: program id, User.com app host, OneSignal app id)."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

from segment_assets.config import ConfigurationError, load_accounts
from segment_assets.config.accounts_file import AccountSpec
from segment_assets.providers import registry


class AckInputError(ValueError):
    """An acknowledgement or mute that cannot be recorded as asked; the message says what to
    change."""


def _identity(spec: AccountSpec, environ: Mapping[str, str]) -> str:
    """The account id of an account of the file (its identity setting, given or named)."""
    provider = registry.get(spec.provider)
    value = spec.values.get(provider.identity)
    if value is None:
        value = environ.get(spec.variables.get(provider.identity, ""), "")
    return provider.resource.account_of(str(value).strip())


def named_accounts(provider: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Name → account id of the provider's accounts in the accounts file (empty without a
    file or when the file does not list the provider). Raises :class:`ConfigurationError`
    with the file's problems."""
    env = os.environ if environ is None else environ
    accounts = load_accounts(env)
    if accounts is None:
        return {}
    return {s.name: _identity(s, env) for s in accounts.providers.get(provider, [])}


def account_names(environ: Mapping[str, str] | None = None) -> dict[tuple[str, str], str]:
    """(provider, account id) → the accounts file's name, for lists; empty when there is no
    file or it cannot be read (the ids are shown then)."""
    try:
        return {
            (provider, ident): name
            for provider in registry.NAMES
            for name, ident in named_accounts(provider, environ).items()
        }
    except ConfigurationError:
        return {}


def resolve_account(
    provider: str,
    given: str,
    stored: Collection[str],
    environ: Mapping[str, str] | None = None,
) -> str:
    """The account id ``given`` stands for: an id the store holds for ``provider``
    (``stored``) as it is, else the accounts file's name for an account, else the single
    account of the environment (``ONESIGNAL_APP_ID`` …) by its id.

    Raises :class:`AckInputError` naming the accounts to choose from, and
    :class:`ConfigurationError` when the name must be looked up in a file that has problems.
    """
    env = os.environ if environ is None else environ
    if given in stored:
        return given
    names = named_accounts(provider, env)
    if given in names:
        return names[given]
    if given in names.values():
        return given
    spec = registry.get(provider)
    single = (env.get(spec.variable(spec.identity)) or "").strip()
    if single and given == spec.resource.account_of(single):
        return given
    choices = [f"names {', '.join(sorted(names))}"] if names else []
    if stored:
        choices.append(f"account ids in the store {', '.join(sorted(stored))}")
    hint = "; ".join(choices) if choices else "none is configured or stored yet"
    raise AckInputError(
        f"{given!r} is no {registry.label(provider)} account ({provider}): give the accounts "
        f"file's name for it or its {spec.account_words} ({hint})"
    )
