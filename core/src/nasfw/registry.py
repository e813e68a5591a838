"""A typed registry over ``pluggy.PluginManager``: core code never calls raw hooks.

Plugins are found through the ``nasfw`` entry-point group, loaded lazily, and collected by kind and
name. A plugin that fails to import, declares another hook API version, or raises while registering
is recorded (and shown by ``nasfw plugins``) instead of crashing the CLI. Two plugins registering
the same name make that name an error naming both distributions. ``NASFW_DISABLE_PLUGINS=a,b``
switches plugins off by entry-point or distribution name.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from nasfw import hookspecs
from nasfw.components import Component, Context, Preset
from nasfw.errors import ConfigError, PluginError, UnknownComponentError, closest

GROUP = "nasfw"

#: kind -> (hook name, human name)
KINDS: dict[str, tuple[str, str]] = {
    "search_space": ("nasfw_register_search_spaces", "search space"),
    "optimizer": ("nasfw_register_optimizers", "optimizer"),
    "selector": ("nasfw_register_selectors", "selector"),
    "shrinker": ("nasfw_register_shrinkers", "shrinker"),
    "dataset": ("nasfw_register_datasets", "dataset"),
    "operation": ("nasfw_register_operations", "operation"),
    "edge_weighting": ("nasfw_register_edge_weightings", "edge weighting"),
    "lr_schedule": ("nasfw_register_lr_schedules", "LR schedule"),
    "benchmark": ("nasfw_register_benchmarks", "benchmark"),
    "proxy": ("nasfw_register_proxies", "proxy"),
    "genotype": ("nasfw_register_genotypes", "zoo genotype"),
    "protocol": ("nasfw_register_protocols", "training protocol"),
}

#: CLI flag of each kind, for error messages.
FLAGS = {"search_space": "--space", "optimizer": "--optimizer", "selector": "--selector",
         "shrinker": "--shrinker", "dataset": "--dataset"}


@dataclass
class ComponentInfo:
    kind: str
    name: str
    obj: Any
    plugin: str
    distribution: str
    version: str
    description: str = ""
    aliases: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "distribution": self.distribution,
                "version": self.version, "plugin": self.plugin, "description": self.description}


@dataclass
class PluginFailure:
    plugin: str
    distribution: str
    error: str

    def as_dict(self) -> dict[str, str]:
        return {"plugin": self.plugin, "distribution": self.distribution, "error": self.error}


@dataclass
class _PluginMeta:
    distribution: str
    version: str


def _ref_parts(ref: Any) -> tuple[str, dict[str, Any]]:
    if ref is None:
        raise ConfigError("missing component reference")
    if isinstance(ref, str):
        return ref, {}
    if isinstance(ref, BaseModel):
        ref = ref.model_dump()
    if isinstance(ref, dict) and "name" in ref:
        params = ref.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"params of '{ref['name']}' must be a mapping, got {type(params).__name__}")
        return str(ref["name"]), dict(params)
    raise ConfigError(f"a component reference is a name or {{name, params}}, got {ref!r}")


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"'{loc}': {err['msg']}" if loc else err["msg"]


class Registry:
    """Components by kind and name, gathered from plugins."""

    def __init__(self, load_entrypoints: bool = True, disabled: set[str] | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.load_entrypoints = load_entrypoints
        env = os.environ.get("NASFW_DISABLE_PLUGINS", "")
        self.disabled = set(disabled or ()) | {s.strip() for s in env.split(",") if s.strip()}
        self.failures: list[PluginFailure] = []
        self._meta: dict[str, _PluginMeta] = {}
        self._loaded = False
        self._components: dict[str, dict[str, ComponentInfo]] | None = None
        self._aliases: dict[str, dict[str, str]] = {}
        self._dupes: dict[tuple[str, str], list[ComponentInfo]] = {}

    # -- loading -------------------------------------------------------------------------
    def add_plugin(self, plugin: object, name: str, distribution: str = "(local)", version: str = "") -> None:
        """Register a plugin object (a module or any object with hookimpls)."""
        if name in self.disabled or distribution in self.disabled:
            return
        api = getattr(plugin, "NASFW_API_VERSION", hookspecs.API_VERSION)
        if api != hookspecs.API_VERSION:
            self.failures.append(PluginFailure(
                name, distribution,
                f"built for nasfw hook API {api}, this nasfw provides API {hookspecs.API_VERSION}; "
                f"install a version of {distribution} made for this nasfw"))
            return
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validation errors (unknown hook, bad signature)
            self.failures.append(PluginFailure(name, distribution, f"{type(exc).__name__}: {exc}"))
            return
        self._meta[name] = _PluginMeta(distribution, version)
        self._components = None

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from nasfw import __version__, builtin

        self.add_plugin(builtin, "nasfw.builtin", "nasfw", __version__)
        if not self.load_entrypoints:
            return
        for ep in sorted(md.entry_points(group=GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "(unknown)"
            version = ep.dist.version if ep.dist is not None else ""
            if ep.name in self.disabled or dist in self.disabled:
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self.failures.append(PluginFailure(ep.name, dist, f"failed to import: {type(exc).__name__}: {exc}"))
                continue
            self.add_plugin(plugin, ep.name, dist, version)

    def _collect(self) -> dict[str, dict[str, ComponentInfo]]:
        self.load()
        if self._components is not None:
            return self._components
        comps: dict[str, dict[str, ComponentInfo]] = {k: {} for k in KINDS}
        self._aliases = {k: {} for k in KINDS}
        self._dupes = {}
        for kind, (hook_name, _) in KINDS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                meta = self._meta.get(impl.plugin_name, _PluginMeta("(local)", ""))

                def register(name: str, obj: Any, *, aliases: tuple[str, ...] = (), description: str = "",
                             _kind: str = kind, _impl: Any = impl, _meta: _PluginMeta = meta) -> None:
                    info = ComponentInfo(_kind, name, obj, _impl.plugin_name, _meta.distribution, _meta.version,
                                         description or _describe(obj), tuple(aliases))
                    existing = comps[_kind].get(name)
                    if existing is not None:
                        self._dupes.setdefault((_kind, name), [existing]).append(info)
                        return
                    comps[_kind][name] = info
                    for a in aliases:
                        self._aliases[_kind].setdefault(a, name)

                try:
                    impl.function(register)
                except Exception as exc:
                    self.failures.append(PluginFailure(
                        impl.plugin_name, meta.distribution,
                        f"{hook_name} raised {type(exc).__name__}: {exc}"))
        for (kind, name), infos in self._dupes.items():
            dists = " and ".join(f"'{i.distribution}'" for i in infos)
            self.failures.append(PluginFailure(
                infos[-1].plugin, infos[-1].distribution,
                f"{KINDS[kind][1]} '{name}' is registered by both {dists}; uninstall one or disable it "
                f"with NASFW_DISABLE_PLUGINS"))
        self._components = comps
        return comps

    # -- lookups -------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self._collect()[kind])

    def all(self) -> list[ComponentInfo]:
        return [info for kind in KINDS for _, info in sorted(self._collect()[kind].items())]

    def info(self, kind: str, name: str) -> ComponentInfo:
        comps = self._collect()[kind]
        name = self._aliases.get(kind, {}).get(name, name)
        if (kind, name) in self._dupes:
            dists = " and ".join(f"'{i.distribution}'" for i in self._dupes[(kind, name)])
            raise PluginError(f"{KINDS[kind][1]} '{name}' is registered by both {dists}; uninstall one of them "
                              f"or set NASFW_DISABLE_PLUGINS")
        if name not in comps:
            flag = FLAGS.get(kind, KINDS[kind][1])
            hint = closest(name, comps)
            avail = ", ".join(sorted(comps)) or "none installed"
            raise UnknownComponentError(
                f"unknown {KINDS[kind][1]} '{name}' ({flag}).{hint} Available: {avail}. "
                f"Run 'nasfw plugins' to see what is installed.")
        return comps[name]

    def get(self, kind: str, name: str) -> Any:
        """The registered object (class, factory or function)."""
        return self.info(kind, name).obj

    def resolve(self, kind: str, ref: Any) -> tuple[str, type[Component], BaseModel]:
        """Follow presets and validate params: (user-facing name, class, validated config)."""
        name, params = _ref_parts(ref)
        obj = self.get(kind, name)
        seen = {name}
        while isinstance(obj, Preset):
            params = _deep_merge(obj.params, params)
            if obj.base in seen:
                raise PluginError(f"preset cycle at {KINDS[kind][1]} '{obj.base}'")
            seen.add(obj.base)
            obj = self.get(kind, obj.base)
        if not (isinstance(obj, type) and issubclass(obj, Component)):
            raise PluginError(f"{KINDS[kind][1]} '{name}' is not a nasfw component class")
        try:
            config = obj.Config.model_validate(params)
        except ValidationError as exc:
            fields = ", ".join(obj.Config.model_fields) or "(none)"
            raise ConfigError(
                f"invalid option for {KINDS[kind][1]} '{name}': {_first_error(exc)}. Allowed options: {fields}"
            ) from None
        self._check_nested(name, kind, config)
        return name, obj, config

    def recipe(self, kind: str, ref: Any, preset: str, config: Any) -> Any:
        """The :class:`~nasfw.presets.Recipe` that ``--preset preset`` gives a component (or None): a registered
        preset's own ``presets`` first, else those of the component it is a preset of, down to the class."""
        name, _ = _ref_parts(ref)
        obj = self.get(kind, name)
        seen = {name}
        while isinstance(obj, Preset):
            if obj.presets is not None:
                found = obj.presets.get(preset)
                return found(config) if callable(found) else found
            if obj.base in seen:
                raise PluginError(f"preset cycle at {KINDS[kind][1]} '{obj.base}'")
            seen.add(obj.base)
            obj = self.get(kind, obj.base)
        return obj.preset(preset, config) if isinstance(obj, type) and issubclass(obj, Component) else None

    def recipe_names(self, kind: str, ref: Any, config: Any) -> list[str]:
        """Names of the presets a component answers (for error messages)."""
        name, _ = _ref_parts(ref)
        obj = self.get(kind, name)
        while isinstance(obj, Preset):
            if obj.presets is not None:
                return sorted(obj.presets)
            obj = self.get(kind, obj.base)
        return obj.preset_names(config) if isinstance(obj, type) and issubclass(obj, Component) else []

    def _check_nested(self, owner: str, owner_kind: str, config: BaseModel) -> None:
        """Validate component references inside a component's config (e.g. a DARTS optimizer's
        ``lr_schedule``) now, not epochs later: a field named after a kind must name one of that kind."""
        from nasfw.config import ComponentRef

        for field_name in type(config).model_fields:
            value = getattr(config, field_name)
            kind = {"space": "search_space"}.get(field_name, field_name)
            if isinstance(value, ComponentRef) and kind in KINDS:
                try:
                    self.resolve(kind, value)
                except (ConfigError, UnknownComponentError) as exc:
                    raise ConfigError(f"{KINDS[owner_kind][1]} '{owner}' option '{field_name}': {exc}") from None

    def create(self, kind: str, ref: Any, ctx: Context | None = None) -> Any:
        """Build a component from a name or ``{name, params}``."""
        name, cls, config = self.resolve(kind, ref)
        try:
            inst = cls(config, ctx if ctx is not None else Context(registry=self))
        except Exception as exc:
            from nasfw.errors import NasfwError

            if isinstance(exc, NasfwError):
                raise
            info = self.info(kind, name)
            raise PluginError(
                f"{KINDS[kind][1]} '{name}' from '{info.distribution}' failed to build: {type(exc).__name__}: {exc}"
            ) from exc
        inst.name = name
        return inst

    def validate(self, kind: str, ref: Any, ctx: Context | None = None) -> BaseModel:
        """Resolve, build and :meth:`~nasfw.components.Component.check` a component; its validated config."""
        _, _, config = self.resolve(kind, ref)
        inst = self.create(kind, ref, ctx)
        try:
            inst.check()
        except Exception as exc:
            from nasfw.errors import NasfwError

            if isinstance(exc, NasfwError):
                raise
            raise PluginError(f"{KINDS[kind][1]} '{inst.name}' failed its checks: {type(exc).__name__}: {exc}") from exc
        return config

    def versions(self, names: dict[str, str | None]) -> dict[str, dict[str, str]]:
        """``{kind: {name, distribution, version}}`` for a run's summary."""
        out = {}
        for kind, name in names.items():
            if name is None:
                continue
            try:
                info = self.info(kind, name)
                out[kind] = {"name": name, "distribution": info.distribution, "version": info.version}
            except Exception:
                out[kind] = {"name": name, "distribution": "?", "version": "?"}
        return out

    # -- lifecycle and commands -------------------------------------------------------------
    def _notify(self, hook: str, **kwargs: Any) -> None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                impl.function(**kwargs)
            except Exception as exc:
                self.failures.append(PluginFailure(impl.plugin_name, "", f"{hook} raised {exc!r}"))
                if os.environ.get("NASFW_DEBUG"):
                    traceback.print_exc()

    def run_started(self, run: Any) -> None:
        self._notify("nasfw_run_started", run=run)

    def epoch_end(self, run: Any, epoch: int, metrics: dict) -> None:
        self._notify("nasfw_epoch_end", run=run, epoch=epoch, metrics=metrics)

    def run_finished(self, run: Any, summary: dict) -> None:
        self._notify("nasfw_run_finished", run=run, summary=summary)

    def add_commands(self, cli: Any) -> None:
        self.load()
        for impl in self.pm.hook.nasfw_register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:
                meta = self._meta.get(impl.plugin_name, _PluginMeta("(local)", ""))
                self.failures.append(PluginFailure(impl.plugin_name, meta.distribution,
                                                   f"nasfw_register_commands raised {type(exc).__name__}: {exc}"))


def _describe(obj: Any) -> str:
    if isinstance(obj, Preset):
        return obj.description or f"preset of '{obj.base}'"
    doc = getattr(obj, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry (entry points loaded once)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests)."""
    global _default
    _default = registry


Factory = Callable[..., Any]
