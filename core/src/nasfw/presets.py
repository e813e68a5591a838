"""Named presets of settings: ``nasfw run --preset paper`` sets what each chosen component's paper used.

A component declares its presets as :class:`Recipe` objects (class attribute ``presets``, or the
``presets`` of a registered :class:`~nasfw.components.Preset`, or — for settings that depend on the run,
e.g. on the space — by overriding the classmethod ``Component.preset(name, config)``). A recipe holds the
component's own params and run-level settings (dotted keys of the run config: ``search.epochs``), each a
:class:`Cited` value with its source, so ``nasfw config show --preset paper`` can say where every number
comes from.

Precedence, lowest first: nasfw's defaults < the preset < a config file < CLI flags < ``--set``. So
``nasfw run --preset paper --epochs 5`` is the paper's protocol with 5 epochs. When two components set
the same run-level key, the later in :data:`ORDER` wins (the optimizer's search schedule over the space's,
the selector's over the optimizer's) and ``config show`` lists both.

Two names are conventions every method plugin should provide:

* ``paper`` — the paper's protocol exactly (epochs, batch, learning rates, warm-up, ...);
* ``tiny`` — the smallest settings at which the component still *acts* (α moves, every decision is made),
  used by the "every method acts" test matrix (:func:`nasfw.testing.acts_matrix`) and handy as a smoke test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nasfw.config import COMPONENT_KEYS, RunConfig, build_config, parse_override, read_config_file, set_path
from nasfw.errors import ConfigError, closest

if TYPE_CHECKING:
    from pathlib import Path

    from nasfw.registry import Registry

#: Run-config keys whose components are asked for recipes, in increasing precedence for run-level keys.
ORDER = ("dataset", "space", "edge_weighting", "benchmark", "shrinker", "optimizer", "selector")


@dataclass(frozen=True)
class Cited:
    """A value and where it comes from (paper section, official script and line)."""

    value: Any
    source: str


@dataclass(frozen=True)
class Recipe:
    """What one named preset sets for one component.

    ``params``: the component's own options (dotted keys reach nested ones:
    ``"lr_schedule.params.warmup_epochs"``). ``run``: run-level settings (``"search.epochs"``,
    ``"search.batch_size"``, ``"space.layers"``, ...). Values are :class:`Cited` (a bare value is allowed
    and shown as "source not given").
    """

    source: str
    params: Mapping[str, Any] = field(default_factory=dict)
    run: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""

    @classmethod
    def from_pairs(cls, source: str, params: Mapping[str, tuple[Any, str]],
                   run: Mapping[str, tuple[Any, str]] | None = None, notes: str = "") -> Recipe:
        """A recipe from ``{key: (value, source)}`` tables, the form a plugin can keep a paper's protocol in
        (its registered preset then takes :func:`values` of the same table)."""
        return cls(source=source, params={k: Cited(v, s) for k, (v, s) in params.items()},
                   run={k: Cited(v, s) for k, (v, s) in (run or {}).items()}, notes=notes)


def values(pairs: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """The values of a ``{key: (value, source)}`` table."""
    return {k: v for k, (v, _) in pairs.items()}


@dataclass(frozen=True)
class Applied:
    """One setting a preset applied: the dotted key, the value, which component asked and why."""

    key: str
    value: Any
    component: str
    source: str
    overridden_by_user: bool = False
    replaced: str | None = None  # the component whose value for this key this one replaced


def _value(item: Any) -> tuple[Any, str]:
    return (item.value, item.source) if isinstance(item, Cited) else (item, "source not given")


def _normalise_components(data: dict[str, Any]) -> dict[str, Any]:
    """``space: darts`` → ``space: {name: darts}`` so a file's component names merge with a preset's params."""
    out = dict(data)
    for key in COMPONENT_KEYS:
        if isinstance(out.get(key), str):
            out[key] = {"name": out[key]}
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _merge_run(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Run-config data ``over`` laid on ``base``: deep, except that naming another component drops the params
    meant for the one it replaces."""
    out = dict(base)
    for k, v in _normalise_components(over).items():
        old = out.get(k)
        if k in COMPONENT_KEYS and isinstance(v, dict) and isinstance(old, dict) and v.get("name", old.get("name")) \
                != old.get("name"):
            out[k] = v
        else:
            out[k] = deep_merge(old, v) if isinstance(v, dict) and isinstance(old, dict) else v
    return out


def recipes(config: RunConfig, preset: str, registry: Registry) -> list[tuple[str, str, Recipe | None]]:
    """``(config key, component name, recipe or None)`` for every component of ``config``, in :data:`ORDER`."""
    out = []
    for key in ORDER:
        ref = getattr(config, key)
        if ref is None:
            continue
        out.append((key, ref.name, registry.recipe(COMPONENT_KEYS[key], ref, preset, config)))
    return out


def preset_layer(config: RunConfig, preset: str, registry: Registry) -> tuple[dict[str, Any], list[Applied]]:
    """The settings ``preset`` gives the components of ``config`` (as raw config data) and their provenance."""
    layer: dict[str, Any] = {}
    applied: dict[str, Applied] = {}
    found = recipes(config, preset, registry)
    if not any(r is not None for _, _, r in found):
        raise ConfigError(_no_such_preset(config, preset, registry))
    for key, name, recipe in found:
        if recipe is None:
            continue
        who = f"{key} {name}"
        layer.setdefault(key, {"name": name, "params": {}})
        for pkey, item in recipe.params.items():
            value, source = _value(item)
            set_path(layer[key]["params"], pkey.split("."), value)
            applied[f"{key}.{pkey}"] = Applied(f"{key}.{pkey}", value, who, source)
        for rkey, item in recipe.run.items():
            value, source = _value(item)
            parts, _ = parse_override(f"{rkey}=0")  # the component shorthand: space.layers → space.params.layers
            dotted = ".".join(parts)
            if parts[0] in COMPONENT_KEYS:
                ref = getattr(config, parts[0])
                if ref is None:
                    continue  # e.g. a shrinker setting when the run has no shrinker
                layer.setdefault(parts[0], {"name": ref.name, "params": {}})
            set_path(layer, parts, value)
            before = applied.get(dotted)
            applied[dotted] = Applied(dotted, value, who, source,
                                      replaced=before.component if before and before.value != value else None)
    return layer, list(applied.values())


def _no_such_preset(config: RunConfig, preset: str, registry: Registry) -> str:
    known: dict[str, list[str]] = {}
    for key in ORDER:
        ref = getattr(config, key)
        if ref is None:
            continue
        for name in registry.recipe_names(COMPONENT_KEYS[key], ref, config):
            known.setdefault(name, []).append(f"{key} {ref.name}")
    hint = closest(preset, known)
    avail = "; ".join(f"{n} ({', '.join(w)})" for n, w in sorted(known.items())) or "none"
    return (f"no component of this run has a preset '{preset}'.{hint} Presets of these components: {avail}")


def merge_with_preset(preset: str | None, file: str | Path | None = None, flags: dict[str, Any] | None = None,
                      overrides: list[str] | tuple[str, ...] = (), base: dict[str, Any] | None = None,
                      registry: Registry | None = None) -> tuple[RunConfig, list[Applied]]:
    """Like :func:`nasfw.config.merge_config`, with a preset between nasfw's defaults (and ``base``) and the
    user's file, flags and ``--set`` overrides. The preset name may also come from the file/flags/overrides
    (``preset: paper``). Returns the config and what the preset applied."""
    from nasfw.config import merge_config
    from nasfw.registry import get_registry

    first = merge_config(file, flags, overrides, base)
    name = preset or first.preset
    if not name:
        return first, []
    reg = registry or get_registry()
    layer, applied = preset_layer(first, name, reg)
    data = _merge_run(_normalise_components(base or {}), layer)
    if file is not None:
        data = _merge_run(data, read_config_file(file))
    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key in COMPONENT_KEYS:  # --optimizer NAME: keep the preset's params when it names the same one
            data = _merge_run(data, {key: value})
        else:
            set_path(data, key.split("."), value)
    for text in overrides:
        parts, value = parse_override(text)
        set_path(data, parts, value)
    data["preset"] = name
    config = build_config(data)
    return config, [_mark_overrides(a, config, reg) for a in applied]


def _lookup(config: RunConfig, key: str) -> Any:
    cur: Any = config.model_dump(mode="json")
    parts, _ = parse_override(f"{key}=0")  # optimizer.lr -> optimizer.params.lr
    for part in parts:
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


_MISSING = object()


def _mark_overrides(a: Applied, config: RunConfig, registry: Registry) -> Applied:
    final = _lookup(config, a.key)
    if final is _MISSING or _same(final, a.value):
        return a
    return Applied(a.key, a.value, a.component, a.source, True, a.replaced)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and _same(a[k], v) for k, v in b.items())  # a preset may set part of a mapping
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def describe(preset: str, applied: list[Applied], config: RunConfig, registry: Registry) -> list[str]:
    """Human-readable lines: each applied setting with its source, then components without this preset."""
    lines = [f"preset '{preset}':"]
    for a in applied:
        note = "  [yours wins]" if a.overridden_by_user else ""
        note += f"  [replaces {a.replaced}'s]" if a.replaced else ""
        lines.append(f"  {a.key} = {a.value!r}  <- {a.component}: {a.source}{note}")
    missing = [f"{k} {n}" for k, n, r in recipes(config, preset, registry) if r is None]
    if missing:
        lines.append(f"  (no '{preset}' preset, defaults kept: {', '.join(missing)})")
    return lines


__all__ = ["ORDER", "Applied", "Cited", "Recipe", "deep_merge", "describe", "merge_with_preset", "preset_layer",
           "recipes"]
