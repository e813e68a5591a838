"""``python -m nasfw`` (and ``torchrun -m nasfw``)."""

from nasfw.cli import main

main()
