"""The accounts file and the provider-wide variables as pydantic models, built from the
registry.

An account's model has one field per setting its provider's registry entry lists, typed
like the resource field the setting fills — so a rule (a rate is positive, a page holds
1 to 100 segments, a list of segment types is of single words) is written once, on the
resource, and the file and the environment are held to it. How a setting may be written
(a key only as ``<setting>_env``, numbers, flags and lists only as values) is checked by
:meth:`AccountSettings._written_as_allowed`, together with the type errors, so every
problem of an account is reported at once.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    create_model,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from segment_assets.config.detection_file import DETECTION, DETECTION_FILE, AccountDetectionFile
from segment_assets.config.errors import ACCOUNT_NAME_RULE, ENV_SUFFIX
from segment_assets.config.reraise import validated
from segment_assets.providers import registry
from segment_assets.providers.http import validate_base_url
from segment_assets.providers.registry import Provider

LABEL = "label"  # optional words for alerts and logs ("Brand A, iOS app")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _account_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(ACCOUNT_NAME_RULE)
    return name


def _variable(name: str) -> str:
    if not _VARIABLE.match(name):  # not repeated: it may be the secret itself
        raise ValueError("must be the name of an environment variable (letters, digits, '_')")
    return name


def _words(text: str) -> str:
    if not text.strip():
        raise ValueError(f"must be some words, got {text!r}")
    return text.strip()


def _base_url(url: str) -> str:
    try:
        return validate_base_url(url, "")
    except ValueError as exc:
        raise ValueError(str(exc).strip()) from None


AccountName = Annotated[str, AfterValidator(_account_name)]
Variable = Annotated[str, AfterValidator(_variable)]
Words = Annotated[str, AfterValidator(_words)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
BaseUrl = Annotated[str, AfterValidator(_base_url)]
ACCOUNT_NAME: TypeAdapter[str] = TypeAdapter(AccountName)
VARIABLE: TypeAdapter[str] = TypeAdapter(Variable)
#: A text setting's type when it is more than some text.
TEXT_TYPES: dict[str, Any] = {"base_url": BaseUrl}


def _problem(key: str | None, text: str) -> InitErrorDetails:
    # a rule's own words; its location is the key, or the account itself
    return InitErrorDetails(
        type=PydanticCustomError("account_setting", text),
        loc=(key,) if key else (),
        input=key,
    )


class AccountSettings(BaseModel):
    """One account of the accounts file; :func:`account_model` makes one per provider."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    provider: ClassVar[Provider]

    label: Words = None  # type: ignore[assignment]  # not given unless in model_fields_set
    detection: AccountDetectionFile | None = None  # its drop detection settings

    @model_validator(mode="wrap")
    @classmethod
    def _written_as_allowed(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A key only as ``<setting>_env``, numbers, flags and lists only as values, each
        setting once, the required ones given; reported with the settings' own errors."""
        if not isinstance(data, dict):
            return handler(data)
        problems, kept = [], {}
        for key, value in data.items():
            name = key.removesuffix(ENV_SUFFIX) if isinstance(key, str) else key
            setting = cls.provider.setting(name) if isinstance(name, str) else None
            form = setting.form if setting else None
            if form == "secret" and key == name:
                problems.append(
                    _problem(
                        key,
                        "never write a key into this file; put it in an environment variable "
                        f"and name that variable with {key}{ENV_SUFFIX}",
                    )
                )
            elif form == "value" and key != name:
                problems.append(_problem(key, f"{name} takes a value in the file, not a variable"))
            else:
                kept[key] = value
        mentioned = {k.removesuffix(ENV_SUFFIX) for k in data if isinstance(k, str)}
        for setting in cls.provider.settings:
            variable = f"{setting.name}{ENV_SUFFIX}"
            if setting.name in kept and variable in kept:
                problems.append(
                    _problem(None, f"{setting.name} is given both as a value and as {variable}")
                )
            elif setting.required and setting.name not in mentioned:
                give = f"{variable}: <VARIABLE>"
                if setting.form == "text":
                    give = f"{setting.name}: … or {give}"
                problems.append(_problem(None, f"{setting.name} is required (give {give})"))
        return validated(handler, kept, problems, cls.__name__)

    def values(self) -> dict[str, Any]:
        """The settings written as values in the file: setting → value."""
        given = self.model_fields_set - {LABEL, DETECTION}
        return {name: getattr(self, name) for name in given if not name.endswith(ENV_SUFFIX)}

    def variables(self) -> dict[str, str]:
        """The settings named by a variable: setting → variable."""
        given = (name for name in self.model_fields_set if name.endswith(ENV_SUFFIX))
        return {name.removesuffix(ENV_SUFFIX): getattr(self, name) for name in given}

    def words(self) -> str:
        return self.label if LABEL in self.model_fields_set else ""


def type_of(field: FieldInfo) -> Any:
    """A resource field's type with its constraints."""
    if not field.metadata:
        return field.annotation
    return Annotated[(field.annotation, *field.metadata)]  # type: ignore[valid-type]


@cache
def account_model(provider: Provider) -> type[AccountSettings]:
    """The model of one ``provider`` account in the file: ``<setting>`` for a value,
    ``<setting>_env`` for the variable that holds it. An absent setting is not set."""
    resource_fields = provider.resource.model_fields
    fields: dict[str, Any] = {}
    for setting in provider.settings:
        if setting.form != "value":
            fields[setting.name + ENV_SUFFIX] = (Variable, None)
        if setting.form == "text":
            fields[setting.name] = (TEXT_TYPES.get(setting.name, Text), None)
        if setting.form == "value":
            fields[setting.name] = (type_of(resource_fields[setting.target]), None)
    name = provider.resource.__name__.removesuffix("Resource") + "Account"
    model = create_model(name, __base__=AccountSettings, **fields)
    model.provider = provider
    return model


@cache
def file_model() -> type[BaseModel]:
    """The whole accounts file: for each provider it lists, its accounts by name (none when
    the provider is given no accounts)."""
    fields: dict[str, Any] = {
        p.name: (dict[AccountName, account_model(p)] | None, None)  # type: ignore[misc]
        for p in registry.PROVIDERS
    }
    fields[DETECTION] = (DETECTION_FILE | None, None)
    config = ConfigDict(extra="forbid", strict=True)
    return create_model("AccountsFileSettings", __config__=config, **fields)


@cache
def variables_model(provider: Provider) -> type[BaseModel]:
    """The provider-wide variables (``<PREFIX>_MAX_RPS`` …) of ``provider``, by setting. A
    base URL is text here: it is held to its rule when a run starts, with the value the run
    reads."""
    resource_fields = provider.resource.model_fields
    fields: dict[str, Any] = {
        s.name: (str if s.form == "text" else type_of(resource_fields[s.target]), None)
        for s in provider.wide_settings()
    }
    name = provider.resource.__name__.removesuffix("Resource") + "Variables"
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
