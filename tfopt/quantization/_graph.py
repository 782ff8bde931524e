"""Walking a functional graph back to where a tensor was quantized."""

from __future__ import annotations

from tfopt.quantization import registry

_MAX_HOPS = 64


def activation_source(tensor):
    """(quantizer, variables) whose grid a symbolic tensor lies on, or None.

    Walks back from `tensor` through layers that keep their input's quantization
    (pooling, padding, reshape...) to the QAT layer that quantized it: a layer
    with an `output_grid()` method (QuantizeLayer, QuantizeWrapper).
    """
    for _ in range(_MAX_HOPS):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return None
        op = history.operation
        output_grid = getattr(op, "output_grid", None)
        if output_grid is not None:
            found = output_grid()
            if found is not False:  # False: keeps its input's grid, walk on
                return found
        if output_grid is not None:  # a QAT layer: the spec it was built with
            spec = getattr(op, "layer_spec", None)
        else:
            spec = registry.spec_for(op)
        if spec is None or spec.kind not in ("passthrough", "same_scale"):
            return None
        inputs = op._inbound_nodes[history.node_index].input_tensors
        if len(inputs) != 1:
            return None
        tensor = inputs[0]
    return None
