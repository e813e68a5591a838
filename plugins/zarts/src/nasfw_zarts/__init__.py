"""ZARTS zero-order architecture optimizers (RS, MGS, GLD) for nasfw."""
