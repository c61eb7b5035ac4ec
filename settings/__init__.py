"""Settings: YAML loading, merging, overrides, the registry, validation and the env.

Components register in ``settings.registries``; ``settings.schema.validate`` checks a YAML spec
against the registered constructor and ``settings.schema.build`` constructs it.
"""
from settings.env import ENV_KEYS, Env
from settings.errors import ConfigError, ConfigIssue
from settings.registry import Registry
from settings.schema import (Factory, Ge, Gt, Le, Lt, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt,
                             UnitInterval, build, create, validate)

__all__ = [
    "ENV_KEYS", "Env", "ConfigError", "ConfigIssue", "Factory", "Registry", "build", "create", "validate",
    "Ge", "Gt", "Le", "Lt", "NonNegativeFloat", "NonNegativeInt", "PositiveFloat", "PositiveInt", "UnitInterval",
]
