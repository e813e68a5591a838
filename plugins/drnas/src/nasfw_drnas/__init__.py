"""DrNAS (Chen et al., ICLR 2021) for nasfw."""
