"""MultiHeadAttention and EinsumDense through QAT to int8 ops (tfopt.quantization._attention).

Each case checks the two things that can go wrong: the decomposition computes what
the layer computes (float, before any quantization), and the int8 file runs the
projections, attention products and softmax in int8 within the parity bar.
"""

import warnings

import keras
import numpy as np
import pytest

import tfopt
from tests.quantization import helpers
from tfopt import quantization as tq
from tfopt.quantization._transform import inline_nested_models

L = keras.layers


def _self_attention(**kwargs):
    inp = keras.Input((8, 12), name="x")
    x = L.Dense(12, activation="relu", name="embed")(inp)
    a = L.MultiHeadAttention(2, 6, name="mha", **kwargs)(x, x)
    x = L.Add(name="residual")([x, a])
    return keras.Model(inp, L.Dense(3, name="logits")(L.GlobalAveragePooling1D()(x)))


def _cross_attention():
    """Query of 5 steps, key and value of 9 (separate tensors), value_dim != key_dim."""
    q_in, kv_in = keras.Input((5, 12), name="q"), keras.Input((9, 10), name="kv")
    k = L.Dense(10, name="key_in")(kv_in)
    a = L.MultiHeadAttention(3, 4, value_dim=5, output_shape=7, name="mha")(q_in, kv_in, k)
    return keras.Model([q_in, kv_in], L.Dense(3, name="logits")(L.Flatten()(a)))


def _causal():
    inp = keras.Input((8, 12), name="x")
    a = L.MultiHeadAttention(2, 6, name="mha")(inp, inp, use_causal_mask=True)
    return keras.Model(inp, L.Dense(3, name="logits")(a))


def _scores_out():
    inp = keras.Input((8, 12), name="x")
    a, scores = L.MultiHeadAttention(2, 6, name="mha")(inp, inp, return_attention_scores=True)
    return keras.Model(inp, [L.Dense(3, name="logits")(a), scores])


def _image_attention():
    """Attention over both spatial axes of a 4x4 feature map (rank-4 input)."""
    inp = keras.Input((4, 4, 6), name="image")
    x = L.Conv2D(8, 1, activation="relu", name="conv")(inp)
    a = L.MultiHeadAttention(2, 4, attention_axes=(1, 2), name="mha")(x, x)
    return keras.Model(inp, L.Dense(3, name="logits")(L.GlobalAveragePooling2D()(a)))


CASES = {
    "self": (_self_attention, [(8, 12)]),
    "dropout": (lambda: _self_attention(dropout=0.2), [(8, 12)]),
    "no_bias": (lambda: _self_attention(use_bias=False), [(8, 12)]),
    "cross": (_cross_attention, [(5, 12), (9, 10)]),
    "causal": (_causal, [(8, 12)]),
    "scores": (_scores_out, [(8, 12)]),
    "image": (_image_attention, [(4, 4, 6)]),
}


def _data(shapes, n=64, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(n, *s)).astype("float32") for s in shapes]
    return xs[0] if len(xs) == 1 else xs


@pytest.mark.parametrize("case", sorted(CASES))
def test_attention_runs_int8_and_computes_what_the_layer_computes(case, tmp_path):
    build, shapes = CASES[case]
    keras.utils.set_random_seed(0)
    model = build()
    x = _data(shapes)
    # The decomposition is the same float computation (before any quantization).
    flat = inline_nested_models(model)
    assert "mha" not in {layer.name for layer in flat.layers}
    for want, got in zip(
        keras.tree.flatten(model.predict(x, verbose=0)),
        keras.tree.flatten(flat.predict(x, verbose=0)),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        qat = tq.quantize_model(model)
    left_float = [str(w.message) for w in caught if "stay float" in str(w.message)]
    if case == "causal":  # the masked softmax, on purpose
        assert len(left_float) == 1 and "1 layer(s)" in left_float[0], left_float
        assert "mha_masked_softmax (MaskedSoftmax)" in left_float[0]
    else:
        assert not left_float, left_float
    for start in range(0, 64, 16):  # observe the ranges
        batch = keras.tree.map_structure(lambda a, s=start: a[s : s + 16], x)
        qat(batch, training=True)
    result = tfopt.export.to_tflite(
        qat, tmp_path / f"{case}.tflite", quantization="int8", verify_data=x
    )
    census = tfopt.export.op_census(result.path)
    assert not census.float_compute_ops(), census.float_compute_ops()
    matmuls = census.of_type("BATCH_MATMUL")
    assert len(matmuls) == 2 and {o.input_dtypes for o in matmuls} == {("int8", "int8")}
    assert {o.input_dtypes[0] for o in census.of_type("FULLY_CONNECTED")} == {"int8"}
    softmax = [o.input_dtypes[0] for o in census.of_type("SOFTMAX")]
    # A masked softmax runs float (-1e9 has no int8 code), named in the notes.
    assert softmax == (["float32"] if case == "causal" else ["int8"])
    assert (case == "causal") is any("SOFTMAX" in note for note in result.notes)
    # Measured: 99.5% (dropout) to 100% within one step, 2 steps at most; the
    # runtime agrees with itself on all of them (its requantization differs from
    # float rounding at a half step; two in a row make a rare 2-step element).
    # Per output, each in its own steps (the scores case has two outputs).
    assert result.parity.within_one_step >= 0.99, result.parity
    assert result.parity.max_error_steps <= 2.0 + helpers.STEP_SLACK, result.parity


def test_annotated_attention_in_quantize_apply(tmp_path):
    """quantize_apply: an annotated MultiHeadAttention is taken apart with its pieces
    annotated; an unannotated one beside it stays float, as the user left it."""
    inp = keras.Input((8, 12), name="x")
    x = L.Dense(12, name="embed")(inp)
    a = L.MultiHeadAttention(2, 6, name="mha")(x, x)
    b = L.MultiHeadAttention(2, 6, name="mha_float")(x, x)
    model = keras.Model(inp, L.Dense(3, name="logits")(L.Add(name="sum")([a, b])))
    annotated = keras.models.clone_model(
        model,
        clone_function=lambda layer: (
            tq.quantize_annotate_layer(layer) if layer.name in ("embed", "mha") else layer
        ),
    )
    qat = tq.quantize_apply(annotated)
    names = {layer.name for layer in qat.layers}
    assert "mha_float" in names and "mha" not in names
    x_data = _data([(8, 12)])
    qat(x_data, training=True)
    result = tfopt.export.to_tflite(
        qat, tmp_path / "partial.tflite", quantization="int8", verify_data=x_data
    )
    census = tfopt.export.op_census(result.path)
    dtypes = sorted(o.input_dtypes[0] for o in census.of_type("BATCH_MATMUL"))
    assert dtypes == ["float32", "float32", "int8", "int8"], dtypes


def test_a_subclassed_attention_layer_is_not_taken_apart():
    """A subclass may compute attention its own way: QAT does not take it apart, and
    refuses it by name (the registry is per class), with the route to leave it float."""

    class MyAttention(L.MultiHeadAttention):
        pass

    inp = keras.Input((8, 12))
    model = keras.Model(inp, L.Dense(3)(MyAttention(2, 6, name="my_attention")(inp, inp)))
    with pytest.raises(ValueError, match="'my_attention' \\(MyAttention\\) is not supported"):
        tq.quantize_model(model)


@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, rewritten",
    [
        ("ab,bc->ac", 6, "c", True),
        ("abc,cd->abd", (5, 6), "d", True),
        ("abc,cde->abde", (5, 2, 3), "de", True),
        ("abc,cde->abde", (5, 2, 3), "e", True),
        ("abcd,cde->abe", (5, 6), "e", True),
        ("...b,bc->...c", 6, None, True),
        ("abc,bd->acd", (4, 6), "d", False),  # contracts a middle axis: not a Dense
        ("abc,cd->adb", (6, 5), None, False),  # the output's axes reordered
    ],
)
def test_einsum_dense_as_dense(equation, output_shape, bias_axes, rewritten, tmp_path):
    """An EinsumDense that is a matrix product over the input's trailing axes becomes
    Reshape -> Dense -> Reshape (same values); any other equation stays float, named."""
    rank = len(equation.split(",")[0].replace("...", "a"))
    shape = {2: (8,), 3: (5, 8), 4: (5, 2, 3)}[rank]
    if not rewritten:
        shape = (5, 4)
    keras.utils.set_random_seed(1)
    inp = keras.Input(shape, name="x")
    layer = L.EinsumDense(equation, output_shape, bias_axes=bias_axes, name="proj")
    y = layer(inp)
    model = keras.Model(inp, L.Dense(2, name="logits")(L.Flatten()(y)))
    layer.set_weights([np.random.default_rng(2).normal(size=w.shape) for w in layer.weights])
    x = _data([shape])
    flat = inline_nested_models(model)
    np.testing.assert_allclose(
        flat.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        qat = tq.quantize_model(model)
    warned = any("proj" in str(w.message) for w in caught)
    assert warned is not rewritten
    assert isinstance(qat.get_layer("quant_proj").layer, L.Dense) if rewritten else True, [
        layer.name for layer in qat.layers
    ]
    qat(x, training=True)
    result = tfopt.export.to_tflite(qat, tmp_path / "e.tflite", quantization="int8", verify_data=x)
    fcs = {o.input_dtypes[0] for o in tfopt.export.op_census(result.path).float_compute_ops()}
    assert (not fcs) if rewritten else fcs == {"float32"}


def test_a_shared_attention_layer_is_refused_by_name():
    inp = keras.Input((8, 12))
    mha = L.MultiHeadAttention(2, 6, name="shared")
    model = keras.Model(inp, mha(mha(inp, inp), inp))
    with pytest.raises(ValueError, match=r"Layer 'shared' is called more than once"):
        tq.quantize_model(model)


def test_annotated_at_build_time_and_masked_in_quantize_apply(tmp_path):
    """tfmot's pattern, quantize_annotate_layer(layer)(x, x), builds an attention layer;
    quantize_apply of an annotated masked attention quantizes both products (the float
    masked softmax between them is re-quantized, as in quantize_model)."""
    inp = keras.Input((8, 12), name="x")
    x = tq.quantize_annotate_layer(L.Dense(12, name="embed"))(inp)
    x = tq.quantize_annotate_layer(L.MultiHeadAttention(2, 6, name="mha"))(
        x, x, use_causal_mask=True
    )
    model = keras.Model(inp, tq.quantize_annotate_layer(L.Dense(3, name="logits"))(x))
    qat = tq.quantize_apply(model)
    x_data = _data([(8, 12)])
    qat(x_data, training=True)
    result = tfopt.export.to_tflite(qat, tmp_path / "a.tflite", verify_data=x_data)
    census = tfopt.export.op_census(result.path)
    assert not census.float_compute_ops(), census.float_compute_ops()
    assert {o.input_dtypes for o in census.of_type("BATCH_MATMUL")} == {("int8", "int8")}


def test_mixed_precision_is_refused_by_name():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inp = keras.Input((8, 12))
        model = keras.Model(inp, L.Dense(3, name="half")(inp))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ValueError, match=r"Layer 'half' computes in float16.*'mixed_float16'"):
        tq.quantize_model(model)


def test_attention_in_16x8(tmp_path):
    """16x8: the converter refuses attention's MUL by 1/sqrt(key_dim) from fake-quant ops
    ('tfl.mul' operands of different types); such a model goes through TFLite's own
    16x8 quantizer with the trained ranges, every op int16."""
    keras.utils.set_random_seed(0)
    model = _self_attention()
    x = _data([(8, 12)])
    qat = tq.quantize_model(model, config="tflite16x8")
    for start in range(0, 64, 16):
        qat(x[start : start + 16], training=True)
    result = tfopt.export.to_tflite(qat, tmp_path / "a16.tflite", verify_data=x)
    assert result.quantization == "int16x8-qat"
    census = tfopt.export.op_census(result.path)
    assert {o.input_dtypes for o in census.of_type("BATCH_MATMUL")} == {("int16", "int16")}
    assert [o.input_dtypes[0] for o in census.of_type("MUL")] == ["int16"]
    assert not census.float_compute_ops()
