"""DARTS-PT (Wang et al., ICLR 2021): perturbation-based architecture selection for nasfw."""
