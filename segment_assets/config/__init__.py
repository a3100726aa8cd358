"""Settings: the accounts file and the environment, turned into typed settings and the
provider resources."""

from segment_assets.config.accounts_file import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    AccountsFile,
    AccountSpec,
    config_path,
    load_accounts,
    parse_accounts,
)
from segment_assets.config.environment import provider_defaults, provider_resources_from_env
from segment_assets.config.errors import ConfigurationError
from segment_assets.config.resources import account_resource, provider_resources

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "AccountSpec",
    "AccountsFile",
    "ConfigurationError",
    "account_resource",
    "config_path",
    "load_accounts",
    "parse_accounts",
    "provider_defaults",
    "provider_resources",
    "provider_resources_from_env",
]
