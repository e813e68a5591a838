"""Turn what a user types into a genotype: a zoo name, a genotype.json, a run directory, or a space's string.

Zoo entries are registered by the plugins that own their spaces (``nasfw_register_genotypes``); the core
only looks them up. :func:`resolve` is the one validation path of ``eval``, ``show`` and the zoo: the strict,
size-limited genotype model (:mod:`nasfw.genotype`), then the space's
:meth:`~nasfw.components.SearchSpace.check_genotype` (known ops, node ranges, edge counts), and for a run
directory, that the genotype is of the space the run searched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasfw.errors import ConfigError, GenotypeError, closest
from nasfw.genotype import Genotype, ZooEntry
from nasfw.registry import Registry, get_registry


@dataclass
class Resolved:
    """A genotype, where it came from, and the space reference that should build it."""

    genotype: Genotype
    origin: str
    space: Any = None  # a name or {name, params}; None = the genotype's own space with defaults
    entry: ZooEntry | None = None
    run_dir: Path | None = None
    space_obj: Any = None  # the built space that checked the genotype (builds its network)


def zoo_names(registry: Registry | None = None) -> list[str]:
    return (registry or get_registry()).names("genotype")


def zoo_entry(name: str, registry: Registry | None = None) -> ZooEntry:
    """The published genotype registered under ``name``."""
    reg = registry or get_registry()
    names = reg.names("genotype")
    if name not in names:
        raise GenotypeError(f"no zoo genotype '{name}'.{closest(name, names)} Available: {', '.join(names) or 'none'}")
    entry = reg.get("genotype", name)
    if not isinstance(entry, ZooEntry):
        raise GenotypeError(f"zoo genotype '{name}' is registered as {type(entry).__name__}, not a ZooEntry")
    return entry


def _run_space(run_dir: Path) -> Any:
    """The space reference in a run's config.yaml (its params matter, e.g. a restricted op list)."""
    import yaml

    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    return data.get("space") if isinstance(data, dict) else None


def resolve(text: str, space: str | None = None, registry: Registry | None = None) -> Resolved:
    """A zoo name, a ``genotype.json`` file, a run directory (its ``genotype.json``), or — with ``space`` —
    the space's own string form (e.g. an NB201 ``|nor_conv_3x3~0|+...`` string, a DARTS ``Genotype(...)``);
    checked against the space that builds it (see the module docstring)."""
    reg = registry or get_registry()
    return check_resolved(_find(text, space, reg), reg, explicit_space=space is not None)


def check_resolved(resolved: Resolved, registry: Registry, explicit_space: bool = False) -> Resolved:
    """Build the space that will build ``resolved.genotype`` and check the genotype against it."""
    g = resolved.genotype
    if resolved.run_dir is not None and not explicit_space and resolved.space is not None:
        searched = resolved.space if isinstance(resolved.space, str) else (resolved.space or {}).get("name")
        if isinstance(searched, str) and searched != g.space:
            raise GenotypeError(f"{resolved.run_dir / 'genotype.json'} is a genotype of space '{g.space}', but the "
                                f"run searched space '{searched}'; it is not this run's genotype (pass it as a file, "
                                f"or --space to build it with another space)")
    ref = resolved.space if resolved.space is not None else g.space
    sp = registry.create("search_space", ref)
    try:
        sp.check_genotype(g)
    except GenotypeError as exc:
        raise GenotypeError(f"{resolved.origin}: {exc}") from None
    resolved.space_obj = sp
    return resolved


def _find(text: str, space: str | None, reg: Registry) -> Resolved:
    if not text.strip():
        raise GenotypeError("an empty genotype argument; give a zoo name, a genotype.json or a run directory")
    if len(text) > 4096 or "\0" in text:
        raise GenotypeError(f"'{text[:40]}...' ({len(text)} characters) is not a zoo name, file or genotype string"
                            if len(text) > 4096 else "a genotype argument may not contain a NUL byte")
    path = Path(text)
    try:
        is_dir, is_file = path.is_dir(), path.exists() and not path.is_dir()
    except OSError:  # e.g. a name longer than the file system allows: not a path, maybe a genotype string
        is_dir = is_file = False
    if is_dir:
        if not (path / "genotype.json").exists():
            raise GenotypeError(f"{path} has no genotype.json (is it a finished run directory?)")
        return Resolved(Genotype.load(path / "genotype.json"), f"run {path}", space or _run_space(path), run_dir=path)
    if is_file:
        return Resolved(Genotype.load(path), str(path), space)
    if text in reg.names("genotype"):
        entry = zoo_entry(text, reg)
        return Resolved(entry.genotype, f"zoo '{text}' ({entry.source})", space, entry=entry)
    if space is not None:
        sp = reg.create("search_space", space)
        genotype = sp.parse(text)
        return Resolved(genotype, f"{space} string", space)
    if text.endswith(".json") or "/" in text:
        raise GenotypeError(f"genotype file or run directory not found: {text}")
    hint = closest(text, reg.names("genotype"))
    raise ConfigError(f"'{text}' is not a zoo genotype, a genotype.json or a run directory.{hint} "
                      f"For a space's string form pass --space (e.g. --space nb201); zoo: "
                      f"{', '.join(reg.names('genotype')) or 'none installed'}")


__all__ = ["Resolved", "resolve", "zoo_entry", "zoo_names"]
