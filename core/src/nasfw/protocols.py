"""Final-training protocols: the published recipes as data (pydantic models), not code.

A protocol says how ``nasfw eval`` trains a genotype's stand-alone network from scratch: the network
options passed to the space's ``build_network`` (``C``/``layers``/``auxiliary`` for DARTS cells, ``C``/``N``
for NB201; a space ignores options it does not know), the dataset, and the optimisation recipe. Every
field can be overridden with ``--set``; the papers' values are the defaults of the named protocols.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from nasfw.components import StrictModel
from nasfw.config import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_STEPS, MAX_WORKERS, ComponentRef
from nasfw.errors import ConfigError


class TrainingProtocol(StrictModel):
    """Hyperparameters of training one stand-alone network from scratch."""

    description: str = ""
    network: dict[str, Any] = Field(default_factory=dict,
                                    description="options for the space's build_network (DARTS: C, layers, auxiliary, "
                                                "imagenet; NB201: C, N)")
    dataset: ComponentRef = Field(default_factory=lambda: ComponentRef(name="digits"))
    input_shape: tuple[int, int, int] = Field(default=(1, 8, 8),
                                              description="C, H, W of one input (for --dry-run params/FLOPs)")
    num_classes: int = Field(default=10, ge=1, le=1_000_000,
                             description="classes (for --dry-run, without loading data)")
    train_on: Literal["train+val", "train"] = Field(
        default="train+val", description="train on the whole training set (both search halves) or the first half")
    epochs: int = Field(default=600, ge=0, le=MAX_EPOCHS)
    batch_size: int = Field(default=96, ge=1, le=MAX_BATCH_SIZE)
    eval_batch_size: int = Field(default=256, ge=1, le=MAX_BATCH_SIZE)
    steps_per_epoch: int | None = Field(default=None, ge=1, le=MAX_STEPS,
                                        description="cap on steps per epoch (CPU smoke runs)")
    lr: float = Field(default=0.025, gt=0)
    lr_schedule: ComponentRef = Field(default_factory=lambda: ComponentRef(name="cosine", params={"min_lr": 0.0}),
                                      description="a registered LR schedule, applied per epoch")
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=3e-4, ge=0)
    grad_clip: float | None = Field(default=5.0, gt=0, description="clip the global gradient norm (None = off)")
    auxiliary_weight: float = Field(default=0.4, ge=0, description="weight of the auxiliary head's loss")
    drop_path_prob: float = Field(default=0.2, ge=0, lt=1, description="final drop-path rate, ramped linearly "
                                                                       "as rate * epoch / epochs")
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    eval_every: int = Field(default=1, ge=1, le=MAX_EPOCHS,
                            description="test accuracy every N epochs (and after the last)")
    num_workers: int = Field(default=0, ge=0, le=MAX_WORKERS)
    sync_bn: bool = Field(default=True, description="under torchrun: BatchNorm statistics over the global batch")

    @model_validator(mode="after")
    def _check(self) -> TrainingProtocol:
        if any(v <= 0 or v > 16384 for v in self.input_shape):
            raise ValueError("input_shape needs three positive sizes (C, H, W) of at most 16384")
        return self


#: DARTS, ICLR 2019, appendix A.2 and cnn/train.py: 20 cells, C = 36, 600 epochs, batch 96, SGD 0.025 cosine to 0,
#: momentum 0.9, wd 3e-4, cutout 16, drop path 0.2 ramped linearly, auxiliary tower 0.4, gradient clip 5.
DARTS_CIFAR = TrainingProtocol(
    description="DARTS CIFAR-10 evaluation (Liu et al. 2019, A.2): 20 cells, C=36, 600 epochs",
    network={"C": 36, "layers": 20, "auxiliary": True, "imagenet": False},
    dataset=ComponentRef(name="cifar10", params={"augment": True, "cutout": 16}),
    input_shape=(3, 32, 32), num_classes=10,
    epochs=600, batch_size=96, lr=0.025, lr_schedule=ComponentRef(name="cosine", params={"min_lr": 0.0}),
    momentum=0.9, weight_decay=3e-4, grad_clip=5.0, auxiliary_weight=0.4, drop_path_prob=0.2,
)

#: DARTS ImageNet mobile setting (paper A.2, cnn/train_imagenet.py): 14 cells, C = 48, 250 epochs, batch 128,
#: SGD lr 0.1 ×0.97 per epoch, wd 3e-5, label smoothing 0.1, auxiliary 0.4, clip 5, no drop path.
DARTS_IMAGENET = TrainingProtocol(
    description="DARTS ImageNet mobile evaluation (Liu et al. 2019, A.2): 14 cells, C=48, 250 epochs",
    network={"C": 48, "layers": 14, "auxiliary": True, "imagenet": True},
    dataset=ComponentRef(name="imagenet"),
    input_shape=(3, 224, 224), num_classes=1000,
    epochs=250, batch_size=128, lr=0.1, lr_schedule=ComponentRef(name="exponential", params={"gamma": 0.97}),
    momentum=0.9, weight_decay=3e-5, grad_clip=5.0, auxiliary_weight=0.4, drop_path_prob=0.0, label_smoothing=0.1,
)

#: NAS-Bench-201 (Dong & Yang, ICLR 2020, Table 1 "H^{‡}" 200-epoch recipe): C = 16, N = 5, SGD nesterov 0.1
#: momentum 0.9, wd 5e-4, cosine to 0, batch 256, 200 epochs, random crop + flip, no auxiliary/drop path/clip.
NB201 = TrainingProtocol(
    description="NAS-Bench-201 200-epoch recipe (Dong & Yang 2020): C=16, N=5, nesterov SGD 0.1 cosine",
    network={"C": 16, "N": 5},
    dataset=ComponentRef(name="cifar10", params={"augment": True}),
    input_shape=(3, 32, 32), num_classes=10,
    epochs=200, batch_size=256, lr=0.1, lr_schedule=ComponentRef(name="cosine", params={"min_lr": 0.0}),
    momentum=0.9, nesterov=True, weight_decay=5e-4, grad_clip=None, auxiliary_weight=0.0, drop_path_prob=0.0,
)

#: A CPU smoke protocol: a small network on the embedded 8x8 digits, a few epochs, seconds to run.
QUICK = TrainingProtocol(
    description="CPU check: small network (DARTS: 3 cells, C=8; NB201: C=8, N=1) on digits, 5 epochs",
    network={"C": 8, "layers": 3, "auxiliary": False, "N": 1},
    dataset=ComponentRef(name="digits"),
    input_shape=(1, 8, 8), num_classes=10,
    epochs=5, batch_size=64, eval_batch_size=512, lr=0.05,
    lr_schedule=ComponentRef(name="cosine", params={"min_lr": 0.0}),
    momentum=0.9, weight_decay=3e-4, grad_clip=5.0, auxiliary_weight=0.0, drop_path_prob=0.0,
)

BUILTIN: dict[str, TrainingProtocol] = {
    "darts-cifar": DARTS_CIFAR,
    "darts-imagenet": DARTS_IMAGENET,
    "nb201": NB201,
    "quick": QUICK,
}


def _nest_component_keys(parts: list[str]) -> list[str]:
    """``dataset.cutout`` means ``dataset.params.cutout`` (as for run configs)."""
    refs = {n for n, f in TrainingProtocol.model_fields.items() if f.annotation is ComponentRef}
    if parts[0] in refs and len(parts) > 1 and parts[1] not in ("name", "params"):
        return [parts[0], "params", *parts[1:]]
    return parts


def override_items(overrides: dict[str, Any] | list[str] | tuple[str, ...]) -> list[tuple[list[str], Any]]:
    """``{dotted.key: value}`` or ``KEY=VALUE`` strings as (key parts, value) pairs."""
    from nasfw.config import parse_override

    if isinstance(overrides, dict):
        return [(str(k).split("."), v) for k, v in overrides.items()]
    return [parse_override(text) for text in overrides]


def network_override_keys(overrides: dict[str, Any] | list[str] | tuple[str, ...]) -> set[str]:
    """The ``build_network`` options a user's overrides set (``network.C=16`` or ``network={C: 16}``)."""
    keys: set[str] = set()
    for parts, value in override_items(overrides):
        if parts[0] == "network" and len(parts) > 1:
            keys.add(parts[1])
        elif parts == ["network"] and isinstance(value, dict):
            keys.update(str(k) for k in value)
    return keys


def apply_overrides(protocol: TrainingProtocol, overrides: dict[str, Any] | list[str] | tuple[str, ...],
                    name: str = "protocol") -> TrainingProtocol:
    """A copy of ``protocol`` with ``{dotted.key: value}`` or ``KEY=VALUE`` strings applied, validated."""
    data = protocol.model_dump(mode="json")
    for parts, value in override_items(overrides):
        parts = _nest_component_keys(parts)
        if parts[0] not in TrainingProtocol.model_fields:
            from nasfw.errors import closest

            hint = closest(parts[0], TrainingProtocol.model_fields)
            raise ConfigError(f"unknown {name} setting '{'.'.join(parts)}'.{hint} "
                              f"Allowed: {', '.join(TrainingProtocol.model_fields)}")
        cur = data
        for p in parts[:-1]:
            nxt = cur.get(p)
            if nxt is None:
                nxt = cur[p] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"{name} setting '{'.'.join(parts)}': '{p}' is not a mapping")
            cur = nxt
        cur[parts[-1]] = value
    try:
        return TrainingProtocol.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"invalid {name} setting '{loc}': {err['msg']}") from None


def get_protocol(name: str, registry: Any = None) -> TrainingProtocol:
    """A registered protocol by name (a copy, safe to modify)."""
    from nasfw.registry import get_registry

    reg = registry or get_registry()
    obj = reg.get("protocol", name)
    if not isinstance(obj, TrainingProtocol):
        raise ConfigError(f"training protocol '{name}' is not a nasfw.protocols.TrainingProtocol")
    return obj.model_copy(deep=True)


__all__ = ["BUILTIN", "TrainingProtocol", "apply_overrides", "get_protocol", "network_override_keys", "override_items"]
