"""The supernet base: named architecture tensors, a pluggable edge weighting and an (edge, op) mask."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch._C import _functorch

from nasfw.components import EdgeWeighting
from nasfw.widening import PartialChannelCell, Widening


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle as PC-DARTS uses it: channel ``g·(C/groups) + c`` moves to ``c·groups + g``."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Supernet(nn.Module):
    """Base class of every space's supernet.

    Architecture parameters live in ``self.alphas`` (one (rows, K) tensor per cell type). The mixing
    coefficients the forward pass uses come from :meth:`mixing_weights`: the edge weighting of α,
    zeroed where the mask is off, unless a selector overrides them explicitly (DARTS-PT sets one-hot
    rows and zeroes single ops without renormalising). Subclasses implement ``forward`` and should
    skip ops whose mask entry is off.

    Edge normalisation (PC-DARTS): with ``edge_groups`` (per cell type, the rows of each node's input
    edges) the supernet also owns one β per edge, ``alphas["beta_<cell>"]`` of shape (rows,), and
    :meth:`edge_weights` gives softmax(β) over each node's input edges. The forward multiplies every
    edge's output by its edge weight; :meth:`strengths` multiplies the op strengths by it, so magnitude
    selection ranks edges by β × op weight. β is an architecture parameter like α (``arch_parameters``
    holds it, ``weight_parameters`` does not), so every gradient optimizer trains it.
    """

    def __init__(
        self,
        arch_shapes: dict[str, tuple[int, int]],
        weighting: EdgeWeighting,
        alpha_init_std: float = 1e-3,
        available: dict[str, torch.Tensor] | None = None,
        edge_groups: dict[str, list[list[int]]] | None = None,
    ):
        super().__init__()
        self.weighting = weighting
        #: the cell types (keys of the α tables, masks and mixing weights)
        self.cell_types: tuple[str, ...] = tuple(arch_shapes)
        self.alphas = nn.ParameterDict(
            {k: nn.Parameter(alpha_init_std * torch.randn(*shape)) for k, shape in arch_shapes.items()}
        )
        #: per cell type with edge normalisation, the rows of each node's input edges
        self.edge_groups: dict[str, list[list[int]]] = {}
        for k, groups in (edge_groups or {}).items():
            rows = sorted(r for g in groups for r in g)
            if rows != list(range(arch_shapes[k][0])):
                raise ValueError(f"edge_groups['{k}'] must partition the {arch_shapes[k][0]} rows of '{k}'")
            self.edge_groups[k] = [list(g) for g in groups]
            self.alphas[f"beta_{k}"] = nn.Parameter(alpha_init_std * torch.randn(arch_shapes[k][0]))
        for k, shape in arch_shapes.items():
            mask = torch.ones(*shape, dtype=torch.bool)
            if available is not None and k in available:
                mask &= available[k].bool()
            self.register_buffer(f"mask_{k}", mask)
        self._override: dict[str, torch.Tensor] = {}
        #: per cell type, (rows, K) True where the op's output is exactly zero (``none``): never run
        self.zero_ops: dict[str, torch.Tensor] = {}
        self._active_cache: dict[str, tuple[tuple[int, int], torch.Tensor, list[list[int]]]] = {}

    # -- parameters ----------------------------------------------------------------------
    def arch_parameters(self) -> dict[str, nn.Parameter]:
        return dict(self.alphas.items())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.alphas.values()}
        return [p for p in self.parameters() if id(p) not in arch]

    def named_weight_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        arch = {id(p) for p in self.alphas.values()}
        return ((n, p) for n, p in self.named_parameters() if id(p) not in arch)

    # -- masks and weights ---------------------------------------------------------------
    def mask(self, name: str) -> torch.Tensor:
        return getattr(self, f"mask_{name}")

    def masks(self) -> dict[str, torch.Tensor]:
        return {k: self.mask(k) for k in self.cell_types}

    def set_mask(self, name: str, mask: torch.Tensor) -> None:
        self.mask(name).copy_(mask.to(torch.bool))

    def mixing_weights(self) -> dict[str, torch.Tensor]:
        """The coefficients of every (edge, op) the forward pass uses now."""
        out = {}
        for k in self.cell_types:
            if k in self._override:
                out[k] = self._override[k]
                continue
            alpha, mask = self.alphas[k], self.mask(k)
            out[k] = self.weighting(alpha, mask) * mask.to(alpha.dtype)
        return out

    def edge_weights(self) -> dict[str, torch.Tensor]:
        """Per cell type with edge normalisation, the (rows,) weight of each edge: softmax of β over each
        node's input edges (all of them, masked or not, as in PC-DARTS). Empty without edge normalisation."""
        out = {}
        for k, groups in self.edge_groups.items():
            beta = self.alphas[f"beta_{k}"]
            parts = [torch.softmax(beta[g[0]:g[-1] + 1] if g == list(range(g[0], g[-1] + 1)) else beta[g], 0)
                     for g in groups]
            order = [r for g in groups for r in g]
            w = torch.cat(parts)
            if order != list(range(len(order))):  # nodes' rows not in row order: put them back
                w = w[torch.tensor(order).argsort().to(beta.device)]
            out[k] = w
        return out

    def active_ops(self, weights: dict[str, torch.Tensor]) -> dict[str, list[list[int]]]:
        """Per cell type and row, the op columns a forward pass must run.

        Masked and exactly-zero ops (:attr:`zero_ops`) never run; without autograd, or under a selector's
        override, ops whose coefficient is exactly zero are skipped too (that reads the weights on the
        host; not for a ``vmap``-ed table). The mask-only table is cached on the mask's version, so a training
        step costs no sync.
        """
        out = {}
        read_weights = not torch.is_grad_enabled()
        for name, w in weights.items():
            mask = self.mask(name)
            key = (mask.data_ptr(), mask._version)
            cached = self._active_cache.get(name)
            if cached is None or cached[0] != key:
                on = mask.cpu()
                if name in self.zero_ops:
                    on = on & ~self.zero_ops[name]
                cached = (key, on, [row.nonzero().flatten().tolist() for row in on])
                self._active_cache[name] = cached
            # a vmapped (per-variant) weight table cannot be read on the host: run the mask-only table
            if (read_weights or name in self._override) and not _functorch.is_functorch_wrapped_tensor(w):
                on = cached[1] & (w.detach().cpu() != 0)
                out[name] = [row.nonzero().flatten().tolist() for row in on]
            else:
                out[name] = cached[2]
        return out

    def compile_units(self) -> list[nn.Module]:
        """The sub-modules ``performance.compile`` hands to ``torch.compile``, each on its own. Default: the
        whole supernet; cell supernets return their cells (a whole DARTS supernet takes too long to compile)."""
        return [self]

    @property
    def partial_channels(self) -> int:
        """K of the partial channel connections now (1: none); the widest cell's if the cells differ."""
        return min((c.partial for c in self.partial_cells()), default=1)

    def partial_cells(self) -> list[PartialChannelCell]:
        """The cells with partial channel connections that :meth:`set_partial_channels` can widen."""
        return [m for m in self.modules() if isinstance(m, PartialChannelCell)]

    def set_partial_channels(self, k: int, generator: torch.Generator | None = None) -> Widening:
        """Widen every partial-channel cell to K = ``k`` in place (:mod:`nasfw.widening`); the caller remaps
        its weight optimizer with the returned mapping (:func:`nasfw.widening.remap_optimizer`)."""
        cells = self.partial_cells()
        if not cells:
            raise ValueError(f"{type(self).__name__} has no partial-channel cells to widen")
        mapping: Widening = {}
        for cell in cells:
            mapping.update(cell.set_partial(k, generator))
        return mapping

    def strengths(self) -> dict[str, torch.Tensor]:
        """What magnitude selection ranks: the weighting's strength, -inf where masked."""
        out = {}
        with torch.no_grad():
            edges = self.edge_weights()
            for k in self.cell_types:
                alpha, mask = self.alphas[k], self.mask(k)
                s = self.weighting.strength(alpha, mask).detach().float().cpu()
                if k in edges:  # PC-DARTS: the edge choice ranks β × op weight
                    s = s * edges[k].detach().float().cpu().unsqueeze(1)
                out[k] = torch.where(mask.cpu(), s, torch.full_like(s, float("-inf")))
        return out

    @contextmanager
    def override_weights(self, weights: dict[str, torch.Tensor]) -> Iterator[None]:
        """Use these mixing coefficients (for the given cell types) inside the block."""
        saved = dict(self._override)
        self._override.update(weights)
        try:
            yield
        finally:
            self._override = saved

    def set_override(self, weights: dict[str, torch.Tensor]) -> None:
        """Permanently override (until cleared with an empty dict) the coefficients of some cell types."""
        self._override = dict(weights)

    def override_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self._override.items()}
