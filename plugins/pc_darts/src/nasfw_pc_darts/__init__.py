"""PC-DARTS (Xu et al., ICLR 2020) for nasfw."""
