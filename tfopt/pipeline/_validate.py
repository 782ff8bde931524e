"""Argument checks of the recipe's dataclasses (Keras-style messages)."""

from __future__ import annotations

import math
import numbers


def received(name: str, value) -> str:
    return f"Received: {name}={value!r}"


def check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Argument `{name}` must be an int. {received(name, value)}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"Argument `{name}` must be {bound}. {received(name, value)}")
    return int(value)


def check_float(name: str, value, low: float, high: float, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Argument `{name}` must be a number. {received(name, value)}")
    value = float(value)
    above = value >= high if high_open else value > high
    if not math.isfinite(value) or value < low or above:
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ValueError(f"Argument `{name}` must be in {bound}. {received(name, value)}")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(
            f"Argument `{name}` must be one of {', '.join(map(repr, choices))}. "
            f"{received(name, value)}"
        )
    return value


def check_optional_bool(name: str, value) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"Argument `{name}` must be True, False or None. {received(name, value)}")


def set_field(obj, name: str, value) -> None:
    object.__setattr__(obj, name, value)  # normalizing a frozen dataclass in __post_init__
