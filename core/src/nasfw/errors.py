"""User-facing errors: anything a user can cause ends as one line and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NasfwError(Exception):
    """An error caused by input (config, names, files): reported as one line, exit code 2."""

    exit_code = 2


class ConfigError(NasfwError):
    """A run configuration or a component's params do not validate."""


class UnknownComponentError(NasfwError):
    """A component name that no installed plugin registers."""


class PluginError(NasfwError):
    """A plugin that is broken, incompatible or clashes with another."""


class GenotypeError(NasfwError):
    """A genotype file or string that is malformed or does not fit its space."""


class CheckpointError(NasfwError):
    """A checkpoint that is missing, truncated or corrupt."""


class DataError(NasfwError):
    """A dataset or benchmark file that is missing or malformed."""


class DivergenceError(NasfwError):
    """The search produced a NaN or infinite loss or architecture weight."""


def closest(name: str, choices: Iterable[str]) -> str:
    """A ' did you mean X?' suffix for the closest valid name, or ''."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""
