"""The run configuration: files, CLI flags and ``--set a.b=c`` overrides end in one validated model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nasfw.errors import ConfigError

COMPONENT_KEYS = {
    "space": "search_space",
    "optimizer": "optimizer",
    "selector": "selector",
    "shrinker": "shrinker",
    "dataset": "dataset",
    "edge_weighting": "edge_weighting",
    "benchmark": "benchmark",
}


#: Bounds of the integer settings (documented in the README): a typo such as ``--batch-size 10**30`` or a
#: 40-digit seed is a one-line error here, not an overflow deep inside torch.
MAX_SEED = 2**63 - 1
MAX_BATCH_SIZE = 2**16
MAX_EPOCHS = 100_000
MAX_STEPS = 2**31 - 1
MAX_WORKERS = 256


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ComponentRef(_Strict):
    """A component by name with its own params (validated against the component's ``Config``)."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class SearchSettings(_Strict):
    """The search schedule shared by every optimizer."""

    epochs: int = Field(default=4, ge=0, le=MAX_EPOCHS, description="search epochs (the papers use 50)")
    batch_size: int = Field(default=64, ge=1, le=MAX_BATCH_SIZE)
    val_batch_size: int | None = Field(default=None, ge=1, le=MAX_BATCH_SIZE,
                                       description="architecture batch (default: batch_size)")
    steps_per_epoch: int | None = Field(default=None, ge=1, le=MAX_STEPS, description="cap on steps per epoch")
    eval_batches: int | None = Field(default=None, ge=1, le=MAX_STEPS,
                                     description="batches for end-of-epoch accuracy (all)")
    val_bn: Literal["batch", "running"] = Field(
        default="batch", description="BatchNorm in the end-of-epoch validation: batch = each batch's own statistics "
                                     "(the supernet as it trains; running statistics are not updated), running = "
                                     "eval-mode running statistics (DARTS' infer(); lags on short runs)")
    checkpoint_every: int | None = Field(default=None, ge=1, le=MAX_STEPS, description="also checkpoint every N steps")
    num_workers: int = Field(default=0, ge=0, le=MAX_WORKERS)


class EvaluationSettings(_Strict):
    """Optional training of the found genotype from scratch after the search."""

    train: bool = False
    protocol: str | None = Field(default=None, description="training protocol (default: the space's own, e.g. "
                                                           "darts-cifar for DARTS cells, nb201 for NB201; quick "
                                                           "is the CPU check)")
    params: dict[str, Any] = Field(default_factory=dict)


class PerformanceSettings(_Strict):
    """Speed switches; with all off, results are those of the plain fp32 path."""

    compile: bool = False
    channels_last: bool = False
    bf16: bool = False
    tf32: bool = True


class DistributedSettings(_Strict):
    """Multi-process runs (torchrun); ignored in one process."""

    sync_bn: bool = Field(default=True, description="BatchNorm statistics over the global batch (all ranks), so N "
                                                    "processes take the one-process steps; false: per-rank shards "
                                                    "(no collective per BN layer, results depend on the world size)")


class LogSettings(_Strict):
    progress: Literal["auto", "rich", "plain", "none"] = "auto"
    tensorboard: bool = True
    plots: bool = True


class RunConfig(_Strict):
    """Everything a run needs; saved as ``config.yaml`` in its run directory."""

    space: ComponentRef = ComponentRef(name="darts", params={"layers": 5, "init_channels": 8})
    optimizer: ComponentRef = ComponentRef(name="darts")
    selector: ComponentRef = ComponentRef(name="magnitude")
    shrinker: ComponentRef | None = None
    dataset: ComponentRef = ComponentRef(name="digits")
    edge_weighting: ComponentRef | None = None
    benchmark: ComponentRef | None = None
    search: SearchSettings = SearchSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    performance: PerformanceSettings = PerformanceSettings()
    distributed: DistributedSettings = DistributedSettings()
    log: LogSettings = LogSettings()
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    deterministic: bool = False
    device: str = "auto"
    out: str | None = None
    preset: str | None = Field(default=None, description="named preset of the components' settings (e.g. paper); "
                                                         "applied under the file, flags and --set")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        import torch

        if value == "auto":
            return value
        try:
            torch.device(value)
        except (RuntimeError, ValueError):
            raise ValueError(f"'{value}' is not a torch device (use auto, cpu, cuda, cuda:1, mps)") from None
        return value

    def component_names(self) -> dict[str, str | None]:
        return {kind: (getattr(self, key).name if getattr(self, key) is not None else None)
                for key, kind in COMPONENT_KEYS.items()}


# --------------------------------------------------------------------------- loading


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping (safe loading only)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path} is not valid {kind}: {first}") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to be a run config") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path} is not a usable {kind} config: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not a {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], value parsed as YAML scalar / list / mapping)."""
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. search.epochs=3), got '{text}'")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not key.strip() or any(not p for p in parts):
        raise ConfigError(f"--set has an empty key in '{text}'; use dotted keys like optimizer.params.arch_lr=1e-3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    except (ValueError, RecursionError):  # an integer of thousands of digits, brackets nested thousands deep
        raise ConfigError(f"--set {key.strip()}: the value is too large or nested too deeply "
                          f"({len(raw)} characters)") from None
    # component shorthand: optimizer.arch_lr=... means optimizer.params.arch_lr=...
    if parts[0] in COMPONENT_KEYS and len(parts) > 1 and parts[1] not in ("name", "params"):
        parts = [parts[0], "params", *parts[1:]]
    return parts, value


def set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    cur = data
    for i, p in enumerate(parts[:-1]):
        nxt = cur.get(p)
        if isinstance(nxt, str) and parts[0] in COMPONENT_KEYS and i == 0:
            nxt = {"name": nxt}
        if nxt is None:
            nxt = {}
            default = RunConfig.model_fields[p].default if i == 0 and p in COMPONENT_KEYS else None
            if isinstance(default, ComponentRef):
                nxt = {"name": default.name, "params": dict(default.params)}
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {'.'.join(parts)}: '{'.'.join(parts[: i + 1])}' is not a mapping")
        cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


def _describe_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        parent = err["loc"][:-1]
        model: Any = RunConfig
        for p in parent:
            f = getattr(model, "model_fields", {}).get(p)
            if f is None:
                model = None
                break
            ann = f.annotation
            model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
            if model is None:
                break
        allowed = ", ".join(model.model_fields) if model is not None else ""
        from nasfw.errors import closest

        hint = closest(str(err["loc"][-1]), model.model_fields) if model is not None else ""
        return f"unknown setting '{loc}'.{hint}" + (f" Allowed here: {allowed}" if allowed else "")
    return f"invalid setting '{loc}': {msg}"


def build_config(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe_error(exc)) from None


def merge_config(
    file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Precedence: base < file < flags < --set overrides."""
    data: dict[str, Any] = dict(base or {})
    if file is not None:
        data.update(read_config_file(file))
    for key, value in (flags or {}).items():
        if value is None:
            continue
        set_path(data, key.split("."), value)
    for text in overrides:
        parts, value = parse_override(text)
        set_path(data, parts, value)
    return build_config(data)


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
