"""Stand-alone evaluation networks of a DARTS genotype (CIFAR and ImageNet variants)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasfw.genotype import Genotype
from nasfw_space_darts.ops import FactorizedReduce, Identity, ReLUConvBN

MakeOp = Callable[[str, int, int], nn.Module]


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (DARTS' drop path)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x.div(keep) * mask


def cell_edges(genotype: Genotype, cell: str) -> list[tuple[str, int, int]]:
    """(op, input, node) of a cell type, grouped by node in node order."""
    return sorted(((e.op, e.input, e.node) for e in genotype.cells[cell]), key=lambda t: t[2])


class EvalCell(nn.Module):
    def __init__(self, edges: list[tuple[str, int, int]], C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool, make_op: MakeOp):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(C_pp, C) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0)
        self.nodes = sorted({node for _, _, node in edges})
        self.inputs = [inp for _, inp, _ in edges]
        self.targets = [node for _, _, node in edges]
        self.ops = nn.ModuleList(make_op(op, C, 2 if reduction and inp < 2 else 1) for op, inp, _ in edges)
        self.multiplier = len(self.nodes)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states: dict[int, torch.Tensor] = {0: self.preprocess0(s0), 1: self.preprocess1(s1)}
        for node in self.nodes:
            acc = None
            for op, inp, tgt in zip(self.ops, self.inputs, self.targets):
                if tgt != node:
                    continue
                h = op(states[inp])
                if self.training and drop_prob > 0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                acc = h if acc is None else acc + h
            assert acc is not None
            states[node] = acc
        return torch.cat([states[n] for n in self.nodes], dim=1)


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier on the 2/3-depth features (CIFAR: 8×8 in; ImageNet: 14×14 in)."""

    def __init__(self, C: int, num_classes: int, imagenet: bool, spatial: int):
        super().__init__()
        if spatial >= 5:
            pool: nn.Module = nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False)
        else:  # tiny inputs (e.g. 8×8 digits): pool to 2×2 so the 2×2 conv still applies
            pool = nn.AdaptiveAvgPool2d(2)
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), pool, nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1) if x.shape[-1] > 1 else x
        return self.classifier(x.flatten(1))


class DartsNetwork(nn.Module):
    """DARTS' NetworkCIFAR / NetworkImageNet. ``forward`` returns logits, or (logits, aux) in training
    with an auxiliary head. ``drop_path_prob`` is set by the trainer (ramped linearly per epoch)."""

    def __init__(self, genotype: Genotype, make_op: MakeOp, C: int, num_classes: int, layers: int,
                 auxiliary: bool, in_channels: int = 3, image_size: int = 32, imagenet: bool = False,
                 stem_multiplier: int = 3):
        super().__init__()
        self.drop_path_prob = 0.0
        self._aux_pos = 2 * layers // 3
        normal, reduce = cell_edges(genotype, "normal"), cell_edges(genotype, "reduce")
        multiplier = len({n for _, _, n in normal})
        if imagenet:
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
                nn.ReLU(inplace=True), nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
            self.stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
                                       nn.BatchNorm2d(C))
            c_pp, c_p, c_curr, reduction_prev, spatial = C, C, C, True, image_size // 8
        else:
            c_curr = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(c_curr))
            c_pp, c_p, c_curr, reduction_prev, spatial = c_curr, c_curr, C, False, image_size
        self.imagenet = imagenet
        self.cells = nn.ModuleList()
        aux_c, aux_spatial = c_p, spatial
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
                spatial = (spatial + 1) // 2
            cell = EvalCell(reduce if reduction else normal, c_pp, c_p, c_curr, reduction, reduction_prev, make_op)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
            if i == self._aux_pos:
                aux_c, aux_spatial = c_p, spatial
        self.auxiliary_head = AuxiliaryHead(aux_c, num_classes, imagenet, aux_spatial) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.imagenet:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_pos and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return (logits, aux) if aux is not None else logits


def count_parameters(model: nn.Module, exclude: str = "auxiliary") -> int:
    """Parameters as the papers report them: the auxiliary head excluded."""
    return sum(p.numel() for n, p in model.named_parameters() if exclude not in n)
