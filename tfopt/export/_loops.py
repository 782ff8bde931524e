"""Loops and TFLite's calibrator: unroll recurrent layers, refuse the loops it cannot run.

TFLite's post-training calibrator (int8 and 16x8 quantization with representative
data) crashes the process with a segmentation fault on graphs with WHILE loops:
measured with TF 2.21 on Keras 3 LSTM, GRU, SimpleRNN and Bidirectional(LSTM)
models, where plain TensorFlow also fails. The same layers with `unroll=True` (a
fixed number of time steps) have no loop and convert to fully integer files. So
before calibrating, a model's recurrent layers are unrolled in a copy with the
same weights; a loop that cannot be unrolled is refused with the routes that work.
"""

from __future__ import annotations

import keras

L = keras.layers


def recurrent_layers(model) -> list:
    """The `keras.layers.RNN` layers (LSTM, GRU, SimpleRNN, ConvLSTM...) in `model`,
    nested models and wrappers (Bidirectional, TimeDistributed) included."""
    from tfopt._layers import find_layers

    return find_layers(model, L.RNN)


def _unrolled_config(config: dict) -> dict:
    config = dict(config)
    if "unroll" in config:
        config["unroll"] = True
    for key in ("layer", "backward_layer"):  # Bidirectional, TimeDistributed
        inner = config.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            config[key] = {**inner, "config": _unrolled_config(inner["config"])}
    return config


def _needs_unroll(layer) -> bool:
    return bool(recurrent_layers(layer)) and not all(
        getattr(rnn, "unroll", False) for rnn in recurrent_layers(layer)
    )


def unrolled(model, quantization: str):
    """`model` with its recurrent layers unrolled (same weights), and a note; or `model`
    itself and None when it has no loop to unroll.

    Raises:
        ValueError: recurrent layers that cannot be unrolled (a subclassed model, or a
            sequence length that is not fixed), with the routes that work.
    """
    rnns = [r for r in recurrent_layers(model) if not getattr(r, "unroll", False)]
    if not rnns:
        return model, None
    names = ", ".join(f"{r.name!r} ({type(r).__name__})" for r in rnns[:4])
    routes = (
        "TFLite's calibrator crashes on recurrent loops, so tfopt unrolls them first, and "
        "that needs {why}. Routes that work: give the model a fixed sequence length "
        "(keras.Input(shape=(steps, features))) for a full integer file; or export with "
        "quantization='dynamic' (int8 weights, float activations) or 'float16'."
    )
    from tfopt._keras import is_graph_model

    if not is_graph_model(model):
        raise ValueError(
            f"Argument `quantization={quantization!r}` needs representative-data calibration, "
            f"and model {model.name!r} has recurrent layers ({names}) inside a subclassed model. "
            + routes.format(why="a Sequential or functional model to clone")
        )

    def clone(layer):
        if isinstance(layer, keras.Model) or not _needs_unroll(layer):
            return layer.__class__.from_config(layer.get_config())
        return layer.__class__.from_config(_unrolled_config(layer.get_config()))

    steps = {_time_steps(r) for r in rnns}
    error = None
    if None in steps:
        error = "a sequence length of None"
    else:
        try:
            copy = keras.models.clone_model(model, clone_function=clone)
        except ValueError as err:
            error = str(err)
    if error is not None:
        raise ValueError(
            f"Argument `quantization={quantization!r}` needs representative-data calibration, "
            f"and the recurrent layers of model {model.name!r} ({names}) cannot be unrolled "
            f"({error}). " + routes.format(why="a fixed number of time steps")
        )
    copy.set_weights(model.get_weights())
    return copy, (
        f"recurrent layers unrolled over {', '.join(map(str, sorted(steps)))} time steps for "
        "calibration (TFLite's calibrator cannot run their loops)"
    )


def _time_steps(rnn):
    """The number of time steps a built recurrent layer runs (None when not fixed)."""
    shape = (rnn.get_build_config() or {}).get("input_shape")
    if not shape or len(shape) < 2:
        return None
    return None if shape[1] is None else int(shape[1])


def _graph_ops(concrete) -> set:
    ops = {op.type for op in concrete.graph.get_operations()}
    for function in concrete.graph._functions.values():
        graph = getattr(function, "graph", None)
        if graph is not None:
            ops |= {op.type for op in graph.get_operations()}
    return ops


_LOOP_OPS = {"While", "StatelessWhile", "TensorListReserve", "TensorListSetItem"}


def check_no_loops(model, specs, quantization: str) -> None:
    """Refuses calibration of a graph that still holds a loop (a custom layer's
    tf.while_loop, a TensorArray...): TFLite's calibrator crashes on them.

    Raises:
        ValueError: naming the loop ops found and the routes that work.
    """
    import tensorflow as tf

    from tfopt.export._model import call_inputs

    @tf.function(input_signature=specs, autograph=False)
    def serve(*args):
        return model(call_inputs(model, args), training=False)

    found = sorted(_graph_ops(serve.get_concrete_function()) & _LOOP_OPS)
    if found:
        raise ValueError(
            f"Argument `quantization={quantization!r}` needs representative-data calibration, "
            f"and model {model.name!r} computes a loop ({', '.join(found)} ops): TFLite's "
            "calibrator crashes the process on loops. Export with quantization='dynamic' "
            "(int8 weights, float activations) or 'float16', or rewrite the loop with a fixed "
            "number of steps (a Python for-loop, or unroll=True for Keras RNN layers)."
        )
