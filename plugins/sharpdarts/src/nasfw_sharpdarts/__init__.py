"""sharpDARTS (Hundt, Jain & Hager, arXiv 1903.09900) for nasfw."""
