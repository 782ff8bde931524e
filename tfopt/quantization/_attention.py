"""MultiHeadAttention and EinsumDense as the int8 ops TFLite runs them.

TFLite has int8 kernels for everything inside a Keras `MultiHeadAttention`:
FULLY_CONNECTED for its EinsumDense projections, MUL for the 1/sqrt(key_dim)
scaling, BATCH_MATMUL for the two attention products (per-tensor scales on both
operands and the output) and SOFTMAX (fixed output scale 1/256). QAT sees the
layer as one opaque call, so before the QAT transform it is replaced by those
pieces, each a layer or `ops` node the registry quantizes:

    query, key, value projections     Dense (per-channel kernel) -> Reshape
    query * 1/sqrt(key_dim)           ops.multiply     (own output scale)
    scores = einsum(key, query)       ops.einsum       (own output scale)
    softmax (masked)                  the layer's own Softmax (fixed 1/256 grid)
    dropout                           the layer's own Dropout
    einsum(scores, value)             ops.einsum       (own output scale)
    output projection                 Reshape -> Dense

An EinsumDense whose equation is a matrix product over the input's trailing
axes (MultiHeadAttention's projections, `"abc,cd->abd"`...) is the same
computation as a Dense on the flattened contracted axes; it becomes
Reshape -> Dense -> Reshape with the kernel and bias reshaped (exact, no new
rounding), so the converter writes one FULLY_CONNECTED with its bias fused
(as an EinsumDense with a bias on two output axes it writes FULLY_CONNECTED,
RESHAPE and a separate ADD, whose intermediate tensor has no range).

A MultiHeadAttention this module cannot take apart (a Keras without the
attributes used) and an EinsumDense of any other equation stay float, named in
the QAT warning and the file; a subclass of MultiHeadAttention (it may compute
attention its own way) is refused by name, as any unregistered layer is.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def _split_equation(equation: str):
    """(input, kernel, output) letters of an EinsumDense equation; '...' becomes '.'."""
    if "->" not in equation or "," not in equation:
        return None
    left, out = equation.replace(" ", "").split("->")
    parts = left.split(",")
    if len(parts) != 2:
        return None
    x, k = parts
    return x.replace("...", "."), k, out.replace("...", ".")


def einsum_as_dense_plan(layer):
    """How an EinsumDense layer is a Dense on reshaped axes, or None if it is not.

    Returns:
        dict with `contracted` (number of trailing input axes multiplied out),
        `free_kernel` (the kernel's output dims, a tuple of ints) and
        `units` (their product), for an equation whose input is
        [free input axes..., contracted axes...], kernel [contracted..., free kernel...]
        and output [free input axes..., free kernel axes...], in those orders, with
        the bias (if any) on trailing output axes only.
    """
    if not isinstance(layer, keras.layers.EinsumDense) or not layer.built:
        return None
    if getattr(layer, "quantization_mode", None):
        return None
    parts = _split_equation(layer.equation)
    if parts is None:
        return None
    x, k, out = parts
    if "." in k or len(set(x)) != len(x) or len(set(k)) != len(k) or len(set(out)) != len(out):
        return None
    contracted = "".join(c for c in x if c in k and c not in out)
    free_x = "".join(c for c in x if c not in k)
    free_k = "".join(c for c in k if c not in x)
    if not contracted or x != free_x + contracted or k != contracted + free_k:
        return None
    if out != free_x + free_k:
        return None
    kernel_shape = tuple(int(d) for d in layer.kernel.shape)
    free_dims = kernel_shape[len(contracted) :]
    if layer.bias is not None and len(layer.bias.shape) > len(free_dims):
        return None  # a bias on an input axis: not a Dense bias
    return {
        "contracted": len(contracted),
        "free_kernel": free_dims,
        "units": int(np.prod(free_dims, dtype=np.int64)) if free_dims else 1,
    }


@keras.saving.register_keras_serializable(package="tfopt")
class HeadsReshape(keras.layers.Reshape):
    """A Reshape of the trailing (feature/head) axes that keeps the padding mask.

    The reshapes around an attention projection split or merge only the axes after
    the sequence axes, so a mask over (batch, steps...) still holds for the output
    (Keras's Reshape drops masks, with a warning). Same arguments as `Reshape`.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(target_shape, **kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        """Returns `mask` unchanged."""
        return mask


def _reshape_target(dims):
    """A Reshape target for non-batch `dims` (None allowed once, as -1), or None."""
    dims = [int(d) if d is not None else -1 for d in dims]
    return tuple(dims) if dims.count(-1) <= 1 else None


def einsum_dense_as_dense(layer, x, name: str | None = None, annotate=None):
    """`layer(x)` for an EinsumDense `layer`, as Reshape -> Dense -> Reshape.

    The Dense holds the layer's kernel as (product of contracted dims, units) and its
    bias broadcast to the kernel's output dims; it is built and its weights set here.
    `annotate(layer)` (optional) wraps the new Dense (quantize_apply). Returns None
    when the layer's equation is not such a product or a reshape has two unknown
    dims; the caller then keeps the EinsumDense.
    """
    plan = einsum_as_dense_plan(layer)
    if plan is None:
        return None
    n = plan["contracted"]
    shape = tuple(x.shape)
    free_in, contracted_dims = shape[1 : len(shape) - n], shape[len(shape) - n :]
    if any(d is None for d in contracted_dims):
        return None
    inner = int(np.prod(contracted_dims, dtype=np.int64))
    flat_in = _reshape_target((*free_in, inner))
    flat_out = _reshape_target((*free_in, *plan["free_kernel"]))
    if flat_in is None or flat_out is None:
        return None
    name = name or layer.name
    config = layer.get_config()
    dense = keras.layers.Dense(
        plan["units"],
        activation=config.get("activation"),
        use_bias=layer.bias is not None,
        kernel_initializer=config.get("kernel_initializer", "glorot_uniform"),
        bias_initializer=config.get("bias_initializer", "zeros"),
        kernel_regularizer=config.get("kernel_regularizer"),
        bias_regularizer=config.get("bias_regularizer"),
        kernel_constraint=config.get("kernel_constraint"),
        bias_constraint=config.get("bias_constraint"),
        dtype=layer.dtype_policy,
        name=name,
    )
    dense.build((None, *free_in, inner))
    weights = [np.asarray(layer.kernel.numpy()).reshape(inner, plan["units"])]
    if layer.bias is not None:
        bias = np.broadcast_to(np.asarray(layer.bias.numpy()), plan["free_kernel"])
        weights.append(bias.reshape(plan["units"]))
    dense.set_weights(weights)
    wrap = annotate or (lambda new: new)
    if n > 1:
        x = wrap(HeadsReshape(flat_in, name=f"{name}_flatten"))(x)
    y = wrap(dense)(x)
    if len(plan["free_kernel"]) != 1:
        y = wrap(HeadsReshape(flat_out, name=f"{name}_unflatten"))(y)
    return y


@keras.saving.register_keras_serializable(package="tfopt")
class MaskedSoftmax(keras.layers.Softmax):
    """The softmax of a masked MultiHeadAttention, registered to stay float.

    Keras sets masked scores to -1e9 before the softmax; an int8 file cannot hold
    that value on the scores' grid (the converter clamps it to the grid's lowest
    code, so masked positions would keep weight: 51 output steps off, measured). In
    float it computes what Keras computes: exp(x - max) / sum, written out, because
    the converter gives a SOFTMAX op's output the fixed int8 grid of 1/256 even when
    the op runs float (a second rounding, onto the consumer's grid, followed: 12%
    of the probabilities one or more steps off, measured). Same arguments as `Softmax`.
    """

    def call(self, inputs, mask=None):
        """Softmax over `axis` of `inputs` where `mask` is true; 0 where it is false."""
        axis = self.axis
        if mask is not None:
            if keras.backend.standardize_dtype(mask.dtype) != "bool":
                mask = keras.ops.greater(mask, 0.5)  # as keras.layers.Softmax reads it
            inputs = keras.ops.where(mask, inputs, keras.ops.cast(-1e9, inputs.dtype))
        shifted = inputs - keras.ops.max(inputs, axis=axis, keepdims=True)
        exp = keras.ops.exp(shifted)
        outputs = exp / keras.ops.sum(exp, axis=axis, keepdims=True)
        if mask is not None:
            outputs = keras.ops.where(mask, outputs, keras.ops.zeros_like(outputs))
        return outputs


def _softmax_on_one_axis(layer, scores, wrap, name):
    """The attention softmax; over several trailing axes (2-D attention) as a Reshape
    to one axis, SOFTMAX, and a Reshape back (TFLite's int8 SOFTMAX takes one axis;
    the converter writes a multi-axis softmax as float EXP, SUM and LOG)."""
    softmax = layer._softmax
    axes = softmax.axis if isinstance(softmax.axis, (tuple, list)) else (softmax.axis,)
    if len(axes) == 1:
        return wrap(softmax)(scores)
    rank = len(scores.shape)
    trailing = sorted(a % rank for a in axes)
    dims = scores.shape[1:]
    if trailing != list(range(rank - len(axes), rank)) or any(d is None for d in dims):
        return wrap(softmax)(scores)
    inner = int(np.prod(dims[rank - 1 - len(axes) :], dtype=np.int64))
    flat = wrap(
        keras.layers.Reshape((*dims[: rank - 1 - len(axes)], inner), name=f"{name}_scores_flatten")
    )(scores)
    probs = wrap(keras.layers.Softmax(axis=-1, name=f"{name}_softmax"))(flat)
    return wrap(keras.layers.Reshape(tuple(dims), name=f"{name}_scores_unflatten"))(probs)


_MHA_ATTRIBUTES = (
    "_query_dense",
    "_key_dense",
    "_value_dense",
    "_output_dense",
    "_dot_product_equation",
    "_combine_equation",
    "_masked_softmax",
    "_dropout_layer",
    "_compute_attention_mask",
)


def decomposable_attention(layer) -> bool:
    """True for a built `keras.layers.MultiHeadAttention` (exactly that class) whose
    projections are Dense-like EinsumDense layers."""
    if type(layer) is not keras.layers.MultiHeadAttention or not layer.built:
        return False
    if not all(hasattr(layer, a) for a in _MHA_ATTRIBUTES):
        return False
    denses = [layer._query_dense, layer._key_dense, layer._value_dense, layer._output_dense]
    if getattr(layer, "_use_gate", False):
        denses.append(layer._gate_dense)
    return all(einsum_as_dense_plan(d) is not None for d in denses)


def _argument(args, kwargs, index, name, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def decomposed_attention(layer, args, kwargs, annotate=None):
    """`layer(*args, **kwargs)` for a MultiHeadAttention, built from its int8 pieces.

    `args`/`kwargs` are the layer call's (query, value, key, masks, attention_mask,
    return_attention_scores, training, use_causal_mask), on the new graph's tensors.
    `annotate(layer)` wraps each new or reused layer (quantize_apply). Returns what
    the layer's call returns: the attention output, and the scores when asked for.
    Returns None when a projection cannot be rewritten (the caller keeps the layer).
    """
    from keras.src import backend as keras_backend

    query = _argument(args, kwargs, 0, "query")
    value = _argument(args, kwargs, 1, "value")
    key = _argument(args, kwargs, 2, "key")
    key = value if key is None else key
    query_mask = kwargs.get("query_mask")
    if query_mask is None:
        query_mask = keras_backend.get_keras_mask(query)
    value_mask = kwargs.get("value_mask")
    if value_mask is None:
        value_mask = keras_backend.get_keras_mask(value)
    key_mask = kwargs.get("key_mask")
    if key_mask is None and key is not value:
        key_mask = keras_backend.get_keras_mask(key)
    for tensor in (query, value, key):  # as MultiHeadAttention.call does: the masks
        keras_backend.set_keras_mask(tensor, None)  # are handled by the attention mask
    return_scores = bool(_argument(args, kwargs, 7, "return_attention_scores", False))
    training = kwargs.get("training")
    use_causal_mask = bool(kwargs.get("use_causal_mask", False))
    attention_mask = layer._compute_attention_mask(
        query,
        value,
        query_mask=query_mask,
        value_mask=value_mask,
        key_mask=key_mask,
        attention_mask=kwargs.get("attention_mask"),
        use_causal_mask=use_causal_mask,
    )
    name = layer.name

    def project(dense, x, suffix):
        return einsum_dense_as_dense(dense, x, name=f"{name}_{suffix}", annotate=annotate)

    q = project(layer._query_dense, query, "query")
    k = project(layer._key_dense, key, "key")
    v = project(layer._value_dense, value, "value")
    if q is None or k is None or v is None:
        return None
    gate = (
        project(layer._gate_dense, query, "gate") if getattr(layer, "_use_gate", False) else None
    )
    q = keras.ops.multiply(q, keras.ops.cast(1.0 / math.sqrt(float(layer._key_dim)), q.dtype))
    scores = keras.ops.einsum(layer._dot_product_equation, k, q)
    wrap = annotate or (lambda new: new)
    if attention_mask is not None:
        axis = -len(layer._attention_axes) * 2 - 1
        for _ in range(len(scores.shape) - len(attention_mask.shape)):
            attention_mask = keras.ops.expand_dims(attention_mask, axis=axis)
        softmax = MaskedSoftmax(axis=layer._softmax.axis, name=f"{name}_masked_softmax")
        scores = wrap(softmax)(scores, mask=attention_mask)
    else:
        scores = _softmax_on_one_axis(layer, scores, wrap, name)
    dropped = scores
    if layer._dropout > 0.0:
        dropped = layer._dropout_layer(scores, training=training)
    out = keras.ops.einsum(layer._combine_equation, dropped, v)
    if gate is not None:
        out = keras.ops.multiply(out, gate)
    out = project(layer._output_dense, out, "attention_output")
    if out is None:
        return None
    return (out, scores) if return_scores else out
