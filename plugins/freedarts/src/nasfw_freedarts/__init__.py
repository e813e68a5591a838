"""nasfw-freedarts: training-free selection by pruning-at-initialisation saliency of α (FreeDARTS v2),
architecture-level zero-cost proxies (zero-cost-nas definitions) and the ``nasfw score`` command."""

from nasfw_freedarts.errors import SaliencyError
from nasfw_freedarts.proxies import PROXIES, score_network
from nasfw_freedarts.saliency import grasp_scores, snip_scores, synflow_scores

__all__ = ["PROXIES", "SaliencyError", "grasp_scores", "score_network", "snip_scores", "synflow_scores"]
