"""nasfw-freedarts: training-free selection by pruning-at-initialisation saliency of α (FreeDARTS v2),
architecture-level zero-cost proxies (zero-cost-nas definitions) and the ``nasfw score`` command.

The saliency-selector base (:class:`SaliencySelector`, with its signal guard) and the in-place scoring
context (:func:`in_place`) are public: a third-party saliency selector subclasses the former.
"""

from nasfw_freedarts.base import SaliencyConfig, SaliencySelector
from nasfw_freedarts.errors import SaliencyError
from nasfw_freedarts.guard import NoSignalError, SignalReport, check_signal
from nasfw_freedarts.proxies import PROXIES, score_network
from nasfw_freedarts.saliency import finalize, grasp_scores, snip_scores, synflow_scores
from nasfw_freedarts.scratch import Scratch, in_place

__all__ = ["PROXIES", "NoSignalError", "SaliencyConfig", "SaliencyError", "SaliencySelector", "Scratch",
           "SignalReport", "check_signal", "finalize", "grasp_scores", "in_place", "score_network",
           "snip_scores", "synflow_scores"]
