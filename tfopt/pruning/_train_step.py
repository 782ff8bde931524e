"""Telling pruning wrappers they train where Keras's fit does not say so."""

from __future__ import annotations

import threading

# How many model train steps (fit's, wrapped by `_train_in_train_step`) this thread is in.
_TRAIN_STEP = threading.local()


def _in_train_step() -> bool:
    return getattr(_TRAIN_STEP, "depth", 0) > 0


def _train_in_train_step(model) -> bool:
    """Makes `model.train_step` tell the pruning wrappers inside that they train.

    Keras's fit passes `training=True` only to a model whose `call()` takes a
    `training` argument; a subclassed model whose `call(self, x)` does not (or a
    custom `train_step` that calls `self(x)`) leaves its layers at `training=None`,
    and a wrapper there would never prune. Within the model's train step, a
    wrapper given no `training` now trains; the model's other layers get what
    Keras gives them, and an explicit `training=False` still wins. Returns True
    when `model.train_step` was wrapped now (a train function made before must be
    made again).
    """
    if getattr(model, "_tfopt_plain_train_step", None) is not None:
        return False
    plain = model.train_step

    def train_step(*args, **kwargs):
        _TRAIN_STEP.depth = getattr(_TRAIN_STEP, "depth", 0) + 1
        try:
            return plain(*args, **kwargs)
        finally:
            _TRAIN_STEP.depth -= 1

    model.train_step = train_step
    model._tfopt_plain_train_step = plain
    return True
