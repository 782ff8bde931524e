"""Magnitude pruning for Keras 3 with tfmot's API (`tfmot.sparsity.keras` -> `tfopt.pruning`)."""

from tfopt.pruning.pruning_schedule import ConstantSparsity, PolynomialDecay, PruningSchedule

__all__ = [
    "ConstantSparsity",
    "PolynomialDecay",
    "PruningSchedule",
]
