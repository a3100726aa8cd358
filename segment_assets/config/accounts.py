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
flags and lists only the first. A provider missing
from the file keeps its single-account variables (``ONESIGNAL_API_KEY`` …); a provider
given no accounts (``actionhub: {}``) is not snapshotted.

:func:`load_accounts` reads and checks the whole file at once and raises one
:class:`~segment_assets.providers.resources.ConfigurationError` listing every problem. Nothing here
calls a provider.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from segment_assets.providers import actionhub, usercom
from segment_assets.providers.http import validate_base_url
from segment_assets.providers.resources import (
    ACCOUNTS_CLASSES,
    RESOURCE_CLASSES,
    AccountsResource,
    ConfigurationError,
    ProviderResource,
    budget_from_env,
    provider_resources_from_env,
)

CONFIG_ENV = "SEGMENT_ASSETS_CONFIG"
DEFAULT_CONFIG = "segment_assets.yaml"
PROVIDERS: tuple[str, ...] = ("actionhub", "usercom", "onesignal")
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class Setting:
    """One setting an account may have: its resource field and its kind."""

    field: str
    kind: type | tuple[type, ...]
    required: bool = False
    secret: bool = False
    identity: bool = False  # part of what makes the account the account


_BUDGET = {
    "max_rps": Setting("max_requests_per_second", (int, float)),
    "max_concurrency": Setting("max_concurrency", int),
}
SETTINGS: dict[str, dict[str, Setting]] = {
    "actionhub": {
        "api_key": Setting("api_key", str, required=True, secret=True),
        "program_id": Setting("program_id", str, required=True, identity=True),
        "base_url": Setting("base_url", str),
        **_BUDGET,
        "segment_types": Setting("segment_types", list),
        "segment_bases": Setting("segment_bases", list),
        "min_weight": Setting("min_weight", (int, float)),
        "force_refresh": Setting("force_refresh", bool),
        "page_size": Setting("page_size", int),
    },
    "usercom": {
        "api_key": Setting("api_key", str, required=True, secret=True),
        "base_url": Setting("base_url", str, required=True, identity=True),
        **_BUDGET,
    },
    "onesignal": {
        "api_key": Setting("api_key", str, required=True, secret=True),
        "app_id": Setting("app_id", str, required=True, identity=True),
        "base_url": Setting("base_url", str),
        **_BUDGET,
    },
}
ENV_SUFFIX = "_env"
LABEL_KEY = "label"  # optional words for alerts and logs ("Brand A, iOS app")


@dataclass(frozen=True)
class AccountSpec:
    """One account of the file, checked. ``values`` hold literal settings, ``variables``
    the settings read from the environment (field → variable name)."""

    provider: str
    name: str
    label: str
    values: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)

    def where(self, setting: str) -> str:
        """How to name a literal setting in a message: ``onesignal.brand_b.app_id``."""
        return f"{self.provider}.{self.name}.{setting}"


@dataclass(frozen=True)
class AccountsFile:
    """The checked file: for each provider it lists, its accounts in file order."""

    path: str
    providers: dict[str, list[AccountSpec]]


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
    problems = [f"{d} (an account or setting may appear once)" for d in loader.duplicates]
    providers: dict[str, list[AccountSpec]] = {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append("the file must map provider names to their accounts")
        data = {}
    for provider, accounts in data.items():
        if provider not in SETTINGS:
            problems.append(
                f"unknown provider {provider!r}; the providers are {', '.join(PROVIDERS)}"
            )
            continue
        if accounts is None:
            accounts = {}
        if not isinstance(accounts, dict):
            problems.append(
                f"{provider}: expected accounts by name (e.g. '{provider}: {{brand_a: …}}'), "
                f"got {type(accounts).__name__}"
            )
            continue
        specs = []
        for name, settings in accounts.items():
            spec = _account(provider, name, settings, environ, problems)
            if spec is not None:
                specs.append(spec)
        _same_account_twice(provider, specs, environ, problems)
        providers[provider] = specs
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(
            f"the accounts file {path} has {len(problems)} problem(s):\n{listing}"
        )
    return AccountsFile(path=path, providers=providers)


def _account(
    provider: str,
    name: Any,
    settings: Any,
    environ: Mapping[str, str],
    problems: list[str],
) -> AccountSpec | None:
    where = f"{provider}.{name}"
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(
            f"{where}: an account name is a letter then letters, digits, '_' or '-' "
            "(at most 40), e.g. brand_a"
        )
        return None
    if not isinstance(settings, dict):
        problems.append(f"{where}: expected its settings (api_key_env: …), got {settings!r}")
        return None
    known = SETTINGS[provider]
    values: dict[str, Any] = {}
    variables: dict[str, str] = {}
    mentioned: set[str] = set()
    label = name
    for key, value in settings.items():
        if key == LABEL_KEY:
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}.{LABEL_KEY}: expected some words, got {value!r}")
            else:
                label = value.strip()
            continue
        base = key[: -len(ENV_SUFFIX)] if key.endswith(ENV_SUFFIX) else key
        setting = known.get(base)
        if setting is None:
            problems.append(
                f"{where}: unknown setting {key!r}; {provider} accounts take "
                f"{', '.join(sorted(known))} (text settings also as <setting>_env) and {LABEL_KEY}"
            )
            continue
        mentioned.add(base)
        if base in values or base in variables:
            problems.append(f"{where}: {base} is given both as a value and as {base}_env")
            continue
        if key.endswith(ENV_SUFFIX):
            if setting.kind is not str:  # a variable holds text; Dagster reads it as text
                problems.append(f"{where}.{key}: {base} takes a value in the file, not a variable")
                continue
            if not isinstance(value, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
                problems.append(f"{where}.{key}: expected an environment variable name")
                continue
            if not (environ.get(value) or "").strip():
                problems.append(f"{where}.{key}: the variable {value} is not set (or empty)")
                continue
            variables[base] = value
            continue
        if setting.secret:
            problems.append(
                f"{where}.{key}: never write a key into this file; put it in an environment "
                f"variable and name that variable with {key}_env"
            )
            continue
        checked = _value(where, key, value, setting, problems)
        if checked is not None:
            values[base] = checked
    missing = [s for s, spec in known.items() if spec.required and s not in mentioned]
    for setting in missing:
        problems.append(f"{where}: {setting} is required (give {setting}_env: <VARIABLE>)")
    if any(s not in values | variables for s, spec in known.items() if spec.required):
        return None
    spec = AccountSpec(provider, name, label, values, variables)
    _check_values(spec, environ, problems)
    return spec


def _value(where: str, key: str, value: Any, setting: Setting, problems: list[str]) -> Any:
    kind = setting.kind
    if isinstance(value, bool) and kind is not bool:
        value = None  # YAML's yes/no is not a number or a text
    if value is None or not isinstance(value, kind):
        wanted = {str: "text", int: "a whole number", list: "a list", bool: "true or false"}
        text = wanted.get(kind, "a number") if isinstance(kind, type) else "a number"
        problems.append(f"{where}.{key}: expected {text}")
        return None
    if key in ("max_rps", "max_concurrency") and value <= 0:
        problems.append(f"{where}.{key}: must be positive, got {value}")
        return None
    if kind is list and not all(isinstance(v, str) for v in value):
        problems.append(f"{where}.{key}: expected a list of names")
        return None
    return value


def resolved(spec: AccountSpec, setting: str, environ: Mapping[str, str]) -> Any:
    """A setting's value now: literal, or read from its variable (None when unset)."""
    if setting in spec.values:
        return spec.values[setting]
    variable = spec.variables.get(setting)
    return environ.get(variable) if variable else None


def _check_values(spec: AccountSpec, environ: Mapping[str, str], problems: list[str]) -> None:
    where = f"{spec.provider}.{spec.name}"
    base_url = resolved(spec, "base_url", environ)
    if base_url is not None:
        name = spec.variables.get("base_url") or f"{where}.base_url"
        try:
            validate_base_url(str(base_url), name)
        except ValueError as exc:
            problems.append(str(exc))
    if spec.provider == "actionhub":
        for setting, check in actionhub.SETTING_CHECKS.items():
            if setting in spec.values:
                try:
                    check(spec.values[setting])
                except ValueError as exc:
                    problems.append(f"{where}.{setting}: {exc}")


def identity(spec: AccountSpec, environ: Mapping[str, str]) -> str:
    """What the account column will hold: program id, User.com app host, OneSignal app id."""
    key = next(s for s, setting in SETTINGS[spec.provider].items() if setting.identity)
    value = str(resolved(spec, key, environ) or "").strip()
    if spec.provider == "usercom":
        return usercom.account_of(value.rstrip("/"))
    return value


def _same_account_twice(
    provider: str, specs: list[AccountSpec], environ: Mapping[str, str], problems: list[str]
) -> None:
    seen: dict[str, str] = {}
    for spec in specs:
        ident = identity(spec, environ)
        if ident in seen:
            problems.append(
                f"{provider}.{spec.name}: the same account as {provider}.{seen[ident]} "
                f"({ident}); each account may be listed once"
            )
        else:
            seen[ident] = spec.name


def account_resource(spec: AccountSpec, path: str, environ: Mapping[str, str]) -> ProviderResource:
    """The resource of one account: literal settings as given, the others as ``EnvVar`` (the
    UI shows the variable's name), provider-wide ``<P>_BASE_URL``, ``<P>_MAX_RPS`` and
    ``<P>_MAX_CONCURRENCY`` as defaults; errors name the variable or the file's setting to fix."""
    settings = SETTINGS[spec.provider]
    prefix = spec.provider.upper()
    fields: dict[str, Any] = budget_from_env(prefix, dict(environ))
    if (environ.get(f"{prefix}_BASE_URL") or "").strip() and spec.provider != "usercom":
        fields["base_url"] = environ[f"{prefix}_BASE_URL"].strip()
    env_names: dict[str, str] = {}
    for key, setting in settings.items():
        if key in spec.variables:
            fields[setting.field] = dg.EnvVar(spec.variables[key])
            env_names[setting.field] = spec.variables[key]
        elif key in spec.values:
            fields[setting.field] = spec.values[key]
            env_names[setting.field] = f"{spec.where(key)} in {path}"
        elif key == "base_url" and "base_url" in fields:
            env_names[setting.field] = f"{prefix}_BASE_URL"
        else:
            env_names[setting.field] = f"{spec.where(key)} in {path}"
    return RESOURCE_CLASSES[spec.provider](
        name=spec.name,
        label_text=spec.label if spec.label != spec.name else "",
        env_names=env_names,
        **fields,
    )


def provider_resources(
    environ: Mapping[str, str] | None = None,
) -> dict[str, ProviderResource | AccountsResource]:
    """The resource of each provider, keyed by provider: the accounts of the accounts file,
    or the single account of the ``<P>_…`` variables for a provider the file does not list
    (or when there is no file)."""
    env = dict(os.environ if environ is None else environ)
    accounts = load_accounts(env)
    resources: dict[str, ProviderResource | AccountsResource] = dict(
        provider_resources_from_env(env)
    )
    if accounts is None:
        return resources
    for provider, specs in accounts.providers.items():
        resources[provider] = ACCOUNTS_CLASSES[provider](
            accounts=[account_resource(spec, accounts.path, env) for spec in specs]
        )
    return resources
