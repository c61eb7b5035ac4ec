"""Settings: YAML loading, merging, overrides, the registry, validation and the env.

Components register in ``settings.registries``; ``settings.schema.validate`` checks a YAML spec
against the registered constructor and ``settings.schema.build`` constructs it.
"""
from settings.env import ENV_KEYS, Env
from settings.errors import ConfigError, ConfigIssue
from settings.registry import Factory, Registry
from settings.schema import (Ge, Gt, Le, Lt, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt,
                             UnitInterval, build, validate)

__all__ = [
    "ENV_KEYS", "Env", "ConfigError", "ConfigIssue", "Factory", "Registry", "build", "validate",
    "Ge", "Gt", "Le", "Lt", "NonNegativeFloat", "NonNegativeInt", "PositiveFloat", "PositiveInt", "UnitInterval",
]
