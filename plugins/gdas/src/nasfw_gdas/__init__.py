"""GDAS (Dong & Yang, CVPR 2019) for nasfw."""
