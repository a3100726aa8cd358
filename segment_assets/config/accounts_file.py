"""The accounts file: several accounts per provider, secrets named, never written.

``segment_assets.yaml`` in the working directory (or the file ``$SEGMENT_ASSETS_CONFIG``
names) maps each provider to its accounts, each under a name of its own::

    onesignal:
      brand_a:
        app_id: 7c1a5e2b-3d4f-4a6b-9c8d-0e1f2a3b4c5d
        api_key_env: ONESIGNAL_BRAND_A_API_KEY
      brand_b:
        app_id_env: ONESIGNAL_BRAND_B_APP_ID
        api_key_env: ONESIGNAL_BRAND_B_API_KEY
        max_rps: 2

A text setting is given as a value (``app_id: …``) or as the name of the environment
variable that holds it (``app_id_env: …``); API keys only ever the second way, numbers,
flags and lists only the first. A provider missing from the file keeps its single-account
variables (``ONESIGNAL_API_KEY`` …); a provider given no accounts (``actionhub: {}``) is not
snapshotted.

:func:`load_accounts` reads and checks the whole file at once — its shape and values with
the models of :mod:`segment_assets.config.settings`, then what a model cannot know: a key
given twice (YAML keeps the last), whether each variable named is set, and the same account
listed under two names — and raises one :class:`ConfigurationError` listing every problem.
Nothing here calls a provider.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from segment_assets.config.detection_file import (
    DETECTION,
    DETECTION_FILE,
    AccountDetectionFile,
    DetectionFile,
)
from segment_assets.config.errors import ConfigurationError, Problem, explain, message, one_error
from segment_assets.config.settings import (
    ACCOUNT_NAME,
    ENV_SUFFIX,
    VARIABLE,
    account_model,
    file_model,
    type_of,
)
from segment_assets.providers import registry
from segment_assets.providers.registry import Provider

CONFIG_ENV = "SEGMENT_ASSETS_CONFIG"
DEFAULT_CONFIG = "segment_assets.yaml"


@dataclass(frozen=True)
class AccountSpec:
    """One account of the file, checked. ``values`` hold the settings written in the file,
    ``variables`` the settings read from the environment (setting → variable name)."""

    provider: str
    name: str
    label: str
    values: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    detection: AccountDetectionFile | None = None  # its ``detection:`` as written

    def where(self, setting: str) -> str:
        """How to name a setting in a message: ``onesignal.brand_b.app_id``."""
        return f"{self.provider}.{self.name}.{setting}"


@dataclass(frozen=True)
class AccountsFile:
    """The checked file: for each provider it lists, its accounts in file order, and the
    top-level ``detection:`` as written (None when absent)."""

    path: str
    providers: dict[str, list[AccountSpec]]
    detection: DetectionFile | None = None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that reports a key given twice instead of keeping the last."""

    duplicates: list[str]


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            loader.duplicates.append(f"line {key_node.start_mark.line + 1}: {key!r} given twice")
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def config_path(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The accounts file and whether it was named explicitly (then it must exist)."""
    env = os.environ if environ is None else environ
    named = (env.get(CONFIG_ENV) or "").strip()
    return Path(named or DEFAULT_CONFIG).expanduser(), bool(named)


def load_accounts(environ: Mapping[str, str] | None = None) -> AccountsFile | None:
    """The checked accounts file, or None when there is none (single-account variables).

    Raises ConfigurationError listing every problem: unreadable or malformed YAML, unknown
    providers or settings, a key written into the file, a missing required setting, an
    account given twice, and variables that are not set.
    """
    env = os.environ if environ is None else environ
    path, named = config_path(env)
    if not path.exists():
        if named:
            raise ConfigurationError(
                f"{CONFIG_ENV} names {str(path)!r}, which does not exist; create it or unset "
                f"{CONFIG_ENV} to use the single-account variables"
            )
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the accounts file {path}: {exc.strerror}") from None
    return parse_accounts(text, str(path), env)


def parse_accounts(text: str, path: str, environ: Mapping[str, str]) -> AccountsFile:
    """Check the text of an accounts file; see :func:`load_accounts`."""
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    problems: list[Problem] = [
        ("", f"{d} (an account or setting may appear once)") for d in loader.duplicates
    ]
    try:
        file_model().model_validate({} if data is None else data)
    except ValidationError as exc:
        problems += explain(exc.errors())
    problems += _variables_not_set(data, environ)
    providers = _checked_accounts(data)
    problems += _same_account_twice(providers, environ)
    if problems:
        raise one_error(f"the accounts file {path}", problems)
    detection = data.get(DETECTION) if isinstance(data, dict) else None
    return AccountsFile(
        path=path,
        providers=providers,
        detection=None if detection is None else DETECTION_FILE.model_validate(detection),
    )


def _accounts_as_written(data: Any) -> Iterator[tuple[Provider, str, dict[Any, Any]]]:
    """``(provider, name, settings)`` of each account written as a mapping under a known
    provider, in file order."""
    if not isinstance(data, dict):
        return
    for provider in (registry.get(p) for p in data if p in registry.NAMES):
        accounts = data[provider.name]
        for name, settings in accounts.items() if isinstance(accounts, dict) else ():
            if isinstance(name, str) and isinstance(settings, dict):
                yield provider, name, settings


def _checked_accounts(data: Any) -> dict[str, list[AccountSpec]]:
    """Every account that passes its model, by provider (a provider given none: empty)."""
    providers: dict[str, list[AccountSpec]] = {}
    if isinstance(data, dict):
        providers = {p: [] for p in data if p in registry.NAMES}
    for provider, name, settings in _accounts_as_written(data):
        try:
            ACCOUNT_NAME.validate_python(name)
            account = account_model(provider).model_validate(settings)
        except ValidationError:
            continue  # reported with the file's problems
        spec = AccountSpec(
            provider.name,
            name,
            account.words() or name,
            account.values(),
            account.variables(),
            account.detection,
        )
        providers[provider.name].append(spec)
    return providers


def _variables_not_set(data: Any, environ: Mapping[str, str]) -> list[Problem]:
    """Each variable the file names must be set, and hold what the setting takes as a
    value (a base URL a URL). Read from the file as written, so these are listed with the
    file's other problems."""
    problems: list[Problem] = []
    for provider, name, settings in _accounts_as_written(data):
        for key, variable in settings.items():
            setting = provider.setting(str(key).removesuffix(ENV_SUFFIX))
            named = str(key).endswith(ENV_SUFFIX) and _is_variable(variable)
            if not named or setting is None or setting.form == "value":
                continue  # not a variable's name, or refused by the account's model
            where = f"{provider.name}.{name}.{key}"
            value = (environ.get(variable) or "").strip()
            if not value:
                problems.append((where, f"the variable {variable} is not set (or empty)"))
                continue
            field = account_model(provider).model_fields.get(setting.name)
            if field is None:
                continue  # a secret: any text
            try:
                TypeAdapter(type_of(field)).validate_python(value)
            except ValidationError as exc:
                problems += [(where, f"{variable} {message(e)}") for e in exc.errors()]
    return problems


def _is_variable(name: Any) -> bool:
    try:
        VARIABLE.validate_python(name)
    except ValidationError:
        return False
    return True


def account_identity(spec: AccountSpec, environ: Mapping[str, str]) -> str:
    """What the account column will hold: program id, User.com app host, OneSignal app id
    (empty while its variable is unset)."""
    provider = registry.get(spec.provider)
    setting = provider.identity
    value = spec.values.get(setting)
    if value is None:
        value = environ.get(spec.variables.get(setting, ""), "")
    return provider.resource.account_of(str(value).strip())


def _same_account_twice(
    providers: dict[str, list[AccountSpec]], environ: Mapping[str, str]
) -> list[Problem]:
    problems: list[Problem] = []
    for provider, specs in providers.items():
        seen: dict[str, str] = {}
        for spec in specs:
            ident = account_identity(spec, environ)
            if not ident:
                continue  # its variable is not set: said already
            if ident in seen:
                problems.append(
                    (
                        f"{provider}.{spec.name}",
                        f"the same account as {provider}.{seen[ident]} ({ident}); each "
                        "account may be listed once",
                    )
                )
            else:
                seen[ident] = spec.name
    return problems
