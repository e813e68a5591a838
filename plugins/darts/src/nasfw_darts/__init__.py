"""DARTS optimizers and the magnitude selector for nasfw."""
