"""What a pruning wrapper cannot do, refused up front with the call that works.

An m:n pattern on a weight with no whole group of n (it would stay dense), and a
wrapper run from inside keras.layers.Bidirectional or TimeDistributed.
"""

from __future__ import annotations

import keras

from tfopt.pruning import prune_registry


def _m_by_n_misfits(layer, m_by_n) -> list[tuple[str, tuple[int, ...], int, int]]:
    """The prunable weights of a built `layer` with no whole group of n on their m:n axis.

    An m:n mask would leave such a weight dense. Returns (weight name, shape, axis,
    axis length) for each.
    """
    n = m_by_n[1]
    found = []
    for weight, axis in prune_registry.prunable_weights(layer):
        shape = tuple(int(d) for d in weight.shape)
        if not shape or shape[axis] < n:
            found.append((weight.name, shape, axis, shape[axis] if shape else 0))
    return found


def _m_by_n_message(misfits: dict, m_by_n) -> str:
    """The error for layers m:n cannot apply to; `misfits` maps layer -> `_m_by_n_misfits`."""
    m, n = m_by_n
    parts = []
    for layer, weights in misfits.items():
        for name, shape, axis, length in weights:
            parts.append(
                f"layer {layer.name!r} ({type(layer).__name__}): weight {name!r} of shape "
                f"{shape} has {length} weight{'s' if length != 1 else ''} on its m:n group "
                f"axis (axis {axis}), fewer than n={n}"
            )
    names = [layer.name for layer in misfits]
    return (
        f"Argument `sparsity_m_by_n` cannot apply to {'; '.join(parts)}. With no whole group "
        f"of {n} weights there, no {m}:{n} pattern exists and the weight would stay dense. "
        f"Keep {'it' if len(names) == 1 else 'them'} dense with "
        f"prune_low_magnitude(model, sparsity_m_by_n={tuple(m_by_n)}, leave_dense={names}) "
        f"(or do not wrap {'that layer' if len(names) == 1 else 'those layers'}), give the "
        f"layer at least {n} weights on that axis (input channels), or prune without a pattern "
        f"(sparsity_m_by_n=None). Received: sparsity_m_by_n={tuple(m_by_n)}"
    )


def _running_inside() -> keras.layers.Layer | None:
    """The TimeDistributed or Bidirectional layer whose call or build is under way, if any.

    Read from Keras's name-scope stack (each layer's `__call__` opens a scope
    naming the layer); a pruning wrapper run from inside one of these is refused.
    """
    from keras.src.backend.common import global_state

    for scope in global_state.get_global_attribute("name_scope_stack") or []:
        caller = getattr(scope, "caller", None)
        if isinstance(caller, (keras.layers.TimeDistributed, keras.layers.Bidirectional)):
            return caller
    return None


def _inside_message(kind: str, inner_class: str, name: str | None = None) -> str:
    """The refusal of a pruning wrapper inside keras.layers.`kind` (named `name`)."""
    why = (
        "it calls its layer once per time step, so the wrapper would advance its pruning "
        "step and recompute its masks that many times per batch"
        if kind == "TimeDistributed"
        else "it rebuilds its layer in both directions from the layer's config, which "
        "holds no go_backwards"
    )
    where = f"keras.layers.{kind}" + (f" {name!r}" if name else "")
    return (
        f"A PruneLowMagnitude cannot run inside {where}: {why}. Wrap the {kind} layer "
        f"instead: tfopt.pruning.prune_low_magnitude(keras.layers.{kind}("
        f"keras.layers.{inner_class}(...))), or build the model with plain layers and call "
        f"prune_low_magnitude(model), which wraps each {kind} whole"
        + (" (both directions are pruned)" if kind == "Bidirectional" else "")
        + f". Received: layer={kind}(PruneLowMagnitude({inner_class}))"
    )
