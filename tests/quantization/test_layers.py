"""Per-layer parity: each supported layer, QAT-trained one epoch, exported fully int8."""

import warnings

import keras
import numpy as np
import pytest

import tfopt
from tests.quantization import helpers
from tfopt import quantization as tq

L = keras.layers


def _head(x):
    return L.Dense(10)(L.Flatten()(x))


def _multiply(i):
    a = L.Conv2D(4, 3, activation="relu")(i)
    return _head(L.Multiply()([a, L.Conv2D(4, 1, activation="sigmoid")(a)]))


def _subtract_leaky(i):
    a = L.Conv2D(4, 3, activation="relu")(i)
    return _head(L.LeakyReLU(0.1)(L.Subtract()([a, L.Conv2D(4, 1)(a)])))


def _unet(i, up, chain=False):
    skip = L.Conv2D(8, 3, padding="same", activation="relu")(i)
    down = L.Conv2D(8, 3, padding="same", activation="relu")(L.MaxPooling2D()(skip))
    up = up(down)
    if chain:  # value-moving layers between the upsampling and the concat
        up = L.Cropping2D(1)(L.ZeroPadding2D(1)(up))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(L.Concatenate()([up, skip]))
    return L.Dense(10)(L.GlobalAveragePooling2D()(x))


def _hard_sigmoid(x):
    """keras.applications.MobileNetV3's: `ops` nodes x + 3.0 and * (1/6) around a ReLU6."""
    return L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)


def _squeeze_excite(i):
    x = L.Conv2D(8, 3, padding="same", activation="relu")(i)
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = _hard_sigmoid(L.Conv2D(8, 1)(L.Conv2D(4, 1, activation="relu")(s)))
    return _head(L.Multiply()([x, s]))


def _ops_shapes(i):
    """Slicing, transpose, reshape and mean recorded as `ops` nodes."""
    x = L.Conv2D(4, 3, padding="same", activation="relu")(i)
    moved = keras.ops.reshape(keras.ops.transpose(x[:, 1:, :, :], (0, 2, 1, 3)), (-1, 7 * 8 * 4))
    pooled = keras.ops.mean(x, axis=(1, 2))
    return L.Dense(10)(L.Concatenate()([L.Dense(8)(moved), pooled]))


def _swish_ops(i):
    x = L.Conv2D(4, 3)(i)
    return _head(x * keras.ops.sigmoid(x) - 0.5)


def _dense_block(i):
    """DenseNet-style: each concat's output feeds the next concat and a conv."""
    x0 = L.Conv2D(4, 3, padding="same")(i)
    x1 = L.Conv2D(4, 3, padding="same", activation="relu")(x0)
    c1 = L.Concatenate()([x0, x1])
    x2 = L.Conv2D(4, 3, padding="same", activation="relu")(c1)
    return _head(L.Concatenate()([c1, x2]))


CASES = {
    "conv1d": ((8, 8), lambda i: _head(L.Conv1D(6, 3, activation="relu")(i))),
    "conv1d_causal_dilated_strided_bn": (
        (8, 8),
        lambda i: _head(
            L.ReLU()(
                L.BatchNormalization()(
                    L.Conv1D(6, 3, strides=2, padding="same", use_bias=False)(
                        L.Conv1D(4, 2, padding="causal", dilation_rate=2, activation="relu")(i)
                    )
                )
            )
        ),
    ),
    "conv2d_transpose": (
        (8, 8, 1),
        lambda i: _head(
            L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(
                L.Conv2D(4, 3, strides=2, padding="same")(i)
            )
        ),
    ),
    "multiply_sigmoid": ((8, 8, 1), _multiply),
    "upsampling_zeropadding_reshape": (
        (8, 8, 1),
        lambda i: L.Dense(10)(
            L.Reshape((-1,))(
                L.ZeroPadding2D(1)(
                    L.UpSampling2D()(L.Conv2D(4, 3, strides=2, activation="relu")(i))
                )
            )
        ),
    ),
    # Tensors meeting in a Concatenate share one range (no requantize in the file):
    # a U-Net skip that also feeds the encoder was requantized, and XNNPACK's
    # requantize is off by one code on ~2% of elements (99.24% within one step).
    "unet_skip_nearest": ((8, 8, 1), lambda i: _unet(i, L.UpSampling2D())),
    "unet_skip_transpose": ((8, 8, 1), lambda i: _unet(i, L.Conv2DTranspose(8, 2, strides=2))),
    "unet_skip_same_scale_chain": (
        (8, 8, 1),
        lambda i: _unet(i, L.UpSampling2D(), chain=True),
    ),
    "concat_model_input": (
        (8, 8, 1),
        lambda i: _head(L.Concatenate()([i, L.Conv2D(4, 3, padding="same")(i)])),
    ),
    "dense_block_nested_concat": ((8, 8, 1), _dense_block),
    # Keras operation nodes (`x + 3.0`, `ops.mean`...): MobileNetV3's hard sigmoid and
    # squeeze-excite were refused ("Layer 'add' (Add) is not supported").
    "ops_hard_sigmoid": ((8, 8, 1), lambda i: _head(_hard_sigmoid(L.Conv2D(4, 3)(i)))),
    "ops_squeeze_excite": ((8, 8, 1), _squeeze_excite),
    "ops_slice_transpose_reshape_mean": ((8, 8, 1), _ops_shapes),
    "ops_sigmoid_multiply_subtract": ((8, 8, 1), _swish_ops),
    "hard_swish": ((8, 8, 1), lambda i: _head(L.Activation("hard_swish")(L.Conv2D(4, 3)(i)))),
    # silu/swish run as LOGISTIC (output on 1/256) then MUL: the sigmoid is rounded
    # first (EfficientNet's activation; 99.97% within one step, worst 2, before).
    "swish_activation_layer": (
        (8, 8, 1),
        lambda i: _head(L.Activation("swish")(L.Conv2D(4, 3)(i))),
    ),
    "conv_own_silu_activation": (
        (8, 8, 1),
        lambda i: _head(L.Conv2D(4, 3, activation="silu")(i)),
    ),
    # hard_tanh's clip is fused into FULLY_CONNECTED (RELU_N1_TO_1): 97.2% before.
    "hard_tanh_fused": ((64,), lambda i: L.Dense(10)(L.Activation("hard_tanh")(L.Dense(16)(i)))),
    "leaky_relu_activation": (
        (64,),
        lambda i: L.Dense(10)(L.Activation("leaky_relu")(L.Dense(16)(i))),
    ),
    # EfficientNet's preprocessing: Rescaling then Normalization run float, quantized once.
    "rescaling_normalization_input": (
        (8, 8, 1),
        lambda i: _head(
            L.Conv2D(4, 3, activation="relu")(L.Normalization()(L.Rescaling(1.0 / 16.0)(i)))
        ),
    ),
    "rescaling_input": (
        (8, 8, 1),
        lambda i: _head(L.Conv2D(4, 3, activation="relu")(L.Rescaling(2.0, offset=-1.0)(i))),
    ),
    "dense_softmax": (
        (64,),
        lambda i: L.Dense(10, activation="softmax")(L.Dense(16, activation="relu")(i)),
    ),
    # Dense on rank >= 3 runs as RESHAPE -> FULLY_CONNECTED -> RESHAPE: a batched
    # MatMul kept a float kernel (a float FULLY_CONNECTED in an "int8-qat" file).
    "dense_rank3": ((8, 8), lambda i: _head(L.Dense(16, activation="relu")(i))),
    "dense_rank4_feature_map": (
        (8, 8, 1),
        lambda i: L.Dense(10)(
            L.GlobalAveragePooling2D()(L.Dense(8)(L.Conv2D(4, 3, activation="relu")(i)))
        ),
    ),
    "dense_bn_relu": (
        (64,),
        lambda i: L.Dense(10)(L.ReLU()(L.BatchNormalization()(L.Dense(16)(i)))),
    ),
    "depthwise_bn_relu6": (
        (8, 8, 1),
        lambda i: _head(
            L.ReLU(6.0)(
                L.BatchNormalization()(L.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False)(i))
            )
        ),
    ),
    "subtract_leaky_relu": ((8, 8, 1), _subtract_leaky),
    "separable_conv_bn_relu": (
        (8, 8, 1),
        lambda i: _head(
            L.ReLU()(
                L.BatchNormalization()(
                    L.SeparableConv2D(8, 3, depth_multiplier=2, padding="same", use_bias=False)(
                        L.Conv2D(4, 3, activation="relu")(i)
                    )
                )
            )
        ),
    ),
    "activation_tanh": ((64,), lambda i: L.Dense(10)(L.Activation("tanh")(L.Dense(16)(i)))),
    # TFLite's AVERAGE_POOL_2D keeps its input's grid and rounds half away from zero:
    # 2x2 windows make ties on a quarter of the outputs.
    "average_pooling": (
        (8, 8, 1),
        lambda i: _head(
            L.AveragePooling2D(2)(L.Conv2D(8, 3, padding="same", activation="relu")(i))
        ),
    ),
}


def _qat_export(shape, build, data, path):
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape)
    qat = tq.quantize_model(keras.Model(inp, build(inp)))
    x, x_test = data.x_train.reshape((-1, *shape)), data.x_test.reshape((-1, *shape))
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, data.y_train, epochs=1, batch_size=64, verbose=0)
    return qat, x_test, tfopt.export.to_tflite(qat, path, verify_data=x_test)


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_parity(case, data, tmp_path):
    shape, build = CASES[case]
    qat, x_test, result = _qat_export(shape, build, data, tmp_path / f"{case}.tflite")
    census = tfopt.export.op_census(result.path)
    assert not census.float_compute_ops(), census.table()
    assert census.counts().get("QUANTIZE", 0) <= 1  # input quantized once, no requantize
    within, worst = helpers.parity_in_steps(result.parity, qat, x_test)
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)
    # Top-1 flips only where two logits of a one-epoch model are within a step.
    assert result.parity.top1_agreement >= 0.98
    qdq = tfopt.export.to_onnx(qat, tmp_path / f"{case}.onnx", verify_data=x_test)
    within, worst = helpers.parity_in_steps(qdq.parity, qat, x_test)
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, ("onnx", within, worst)


def test_conv1d_kernels_are_per_channel_in_both_files(data, tmp_path):
    import onnx
    from ai_edge_litert.interpreter import Interpreter
    from onnx import numpy_helper

    shape, build = CASES["conv1d_causal_dilated_strided_bn"]
    qat, x_test, result = _qat_export(shape, build, data, tmp_path / "c1d.tflite")
    interpreter = Interpreter(model_path=str(result.path))
    tensors = interpreter.get_tensor_details()
    conv_weights = [
        tensors[op["inputs"][1]]
        for op in interpreter._get_ops_details()
        if op["op_name"] == "CONV_2D"
    ]
    # One scale per output channel of each Conv1D (4, then 6 with the BatchNorm folded).
    scales = sorted(len(t["quantization_parameters"]["scales"]) for t in conv_weights)
    assert scales == [4, 6] and all(t["dtype"] == np.int8 for t in conv_weights)
    qdq = tfopt.export.to_onnx(qat, tmp_path / "c1d.onnx", verify_data=x_test)
    graph = onnx.load(str(qdq.path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    dqs = [producers[n.input[1]] for n in convs]
    assert [dq.op_type for dq in dqs] == ["DequantizeLinear"] * 2
    assert sorted(inits[dq.input[1]].size for dq in dqs) == [4, 6]


def test_partial_qat_leaves_unannotated_layers_float(data, tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            tq.quantize_annotate_layer(L.Dense(32, activation="relu", name="q_dense")),
            L.Dense(10, name="float_dense"),
        ]
    )
    qat = tq.quantize_apply(model)
    kinds = {layer.name: type(layer).__name__ for layer in qat.layers}
    assert kinds["quant_q_dense"] == "QuantizeWrapper" and kinds["float_dense"] == "Dense"
    x = data.x_train.reshape((-1, 64))
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, data.y_train, epochs=1, batch_size=64, verbose=0)
    x_test = data.x_test.reshape((-1, 64))
    result = tfopt.export.to_tflite(qat, tmp_path / "partial.tflite", verify_data=x_test)
    fc = tfopt.export.op_census(result.path).of_type("FULLY_CONNECTED")
    assert [op.input_dtypes[0] for op in fc] == ["int8", "float32"]
    ref = qat.predict(x_test, verbose=0)
    # The float tail runs in float32 on the dequantized int8 activations: a one-step
    # difference there (step s of the quantized ReLU output) moves an output by at most
    # s times the largest column L1 norm of the float kernel.
    out_vars = {layer.name: layer for layer in qat.layers}["quant_q_dense"]._output_vars[0]
    step = float(out_vars["max"].numpy() - out_vars["min"].numpy()) / 255
    kernel = {layer.name: layer for layer in qat.layers}["float_dense"].kernel.numpy()
    bound = step * np.abs(kernel).sum(axis=0).max() + 1e-5
    assert np.abs(result.parity.outputs[0] - ref).max() <= bound


# Layers left in float after an int8 conv, and the TFLite op that must stay float:
# the converter used to carry int8 into ops whose output scale it can infer (an
# unannotated tanh ran as an int8 TANH with a requantize: 85.9% within one step).
FLOAT_LAYERS = {
    "tanh": (lambda: L.Activation("tanh", name="float"), "TANH"),
    "sigmoid": (lambda: L.Activation("sigmoid", name="float"), "LOGISTIC"),
    "softmax": (lambda: L.Softmax(name="float"), "SOFTMAX"),
    "layer_norm": (lambda: L.LayerNormalization(name="float"), "MEAN"),
    "average_pooling": (lambda: L.AveragePooling2D(2, name="float"), "AVERAGE_POOL_2D"),
}


@pytest.mark.parametrize("case", sorted(FLOAT_LAYERS))
@pytest.mark.parametrize("flatten_annotated", [True, False])
def test_partial_qat_layer_left_float_runs_float(case, flatten_annotated, data, tmp_path):
    make, op = FLOAT_LAYERS[case]
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = L.Flatten(name="flatten")(make()(L.Conv2D(4, 3, name="conv")(inp)))
    model = keras.Model(inp, L.Dense(10, name="head")(x))
    keep = {"float"} if flatten_annotated else {"float", "flatten"}
    annotated = keras.models.clone_model(
        model,
        clone_function=lambda layer: (
            layer if layer.name in keep else tq.quantize_annotate_layer(layer)
        ),
    )
    qat = tq.quantize_apply(annotated)
    x_train, x_test = data.x_train.reshape((-1, 8, 8, 1)), data.x_test.reshape((-1, 8, 8, 1))
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    result = tfopt.export.to_tflite(qat, tmp_path / f"{case}.tflite", verify_data=x_test)
    census = tfopt.export.op_census(result.path)
    assert {o.input_dtypes[0] for o in census.of_type(op)} == {"float32"}, census.table()
    assert {o.input_dtypes[0] for o in census.of_type("CONV_2D")} == {"int8"}
    assert {o.input_dtypes[0] for o in census.of_type("FULLY_CONNECTED")} == {"int8"}
    within, worst = helpers.parity_in_steps(result.parity, qat, x_test)
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)
    qdq = tfopt.export.to_onnx(qat, tmp_path / f"{case}.onnx", verify_data=x_test)
    within, worst = helpers.parity_in_steps(qdq.parity, qat, x_test)
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, ("onnx", within, worst)


def test_partial_qat_float_output_layer(data, tmp_path):
    """A float tanh as the model's last layer, after an int8 Dense, stays float."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            tq.quantize_annotate_layer(L.Dense(16, activation="relu")),
            tq.quantize_annotate_layer(L.Dense(10)),
            L.Activation("tanh"),
        ]
    )
    qat = tq.quantize_apply(model)
    x = data.x_train.reshape((-1, 64))
    qat.compile("adam", "mse")
    qat.fit(x, np.eye(10)[data.y_train], epochs=1, batch_size=64, verbose=0)
    x_test = data.x_test.reshape((-1, 64))
    result = tfopt.export.to_tflite(qat, tmp_path / "tail.tflite", verify_data=x_test)
    census = tfopt.export.op_census(result.path)
    assert [o.input_dtypes[0] for o in census.of_type("TANH")] == ["float32"]
    # Float tanh of the same dequantized logits: float32 rounding only.
    assert result.parity.max_abs_error <= 1e-5
    qat.save(tmp_path / "partial.keras")
    loaded = keras.models.load_model(tmp_path / "partial.keras")
    assert "FloatBoundary" in {type(layer).__name__ for layer in loaded.layers}
    np.testing.assert_array_equal(
        loaded.predict(x_test, verbose=0), qat.predict(x_test, verbose=0)
    )


def test_quantize_apply_needs_annotations():
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    with pytest.raises(ValueError, match="no annotated layer"):
        tq.quantize_apply(model)
    with pytest.raises(TypeError, match="to_annotate of type Sequential"):
        tq.quantize_annotate_layer(model)


def test_shared_range_saves_loads_and_trains_on(data, tmp_path):
    """A U-Net's SharedQuantize (one layer, called per member) round-trips a save."""
    shape, build = CASES["unet_skip_transpose"]
    qat, x_test, _ = _qat_export(shape, build, data, tmp_path / "unet.tflite")
    shared = [layer for layer in qat.layers if isinstance(layer, tq.SharedQuantize)]
    assert len(shared) == 1 and shared[0].members == 2
    low, high = (float(shared[0]._vars[k].numpy()) for k in ("min", "max"))
    members = [(float(v["min"].numpy()), float(v["max"].numpy())) for v in shared[0]._member_vars]
    assert (low, high) == (min(m[0] for m in members), max(m[1] for m in members))
    qat.save(tmp_path / "unet.keras")
    loaded = keras.models.load_model(tmp_path / "unet.keras")
    np.testing.assert_array_equal(
        loaded.predict(x_test, verbose=0), qat.predict(x_test, verbose=0)
    )
    loaded.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loaded.fit(data.x_train[:64], data.y_train[:64], epochs=1, verbose=0)
    again = tfopt.export.to_tflite(loaded, tmp_path / "again.tflite", verify_data=x_test)
    assert tfopt.export.op_census(again.path).counts().get("QUANTIZE", 0) == 1


def test_shared_quantize_arguments():
    with pytest.raises(ValueError, match="members=0"):
        tq.SharedQuantize(members=0)
    with pytest.raises(ValueError, match="MovingAverageQuantizer"):
        tq.SharedQuantize(members=2, quantizer=tq.FixedRangeQuantizer(0.0, 1.0))
    shared = tq.SharedQuantize(members=2)
    with pytest.raises(ValueError, match="member"):
        shared(keras.Input((4,)), member=2)


def test_operation_without_int8_kernel_stays_float_and_is_named(data, tmp_path):
    """An `ops` call TFLite has no int8 kernel for (exp) stays float, said twice."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = L.Conv2D(4, 3)(inp)
    model = keras.Model(inp, _head(keras.ops.exp(x * 0.1)))
    with pytest.warns(UserWarning, match=r"stay float.*exp.*\(Exp\)"):
        qat = tq.quantize_model(model)
    x_train, x_test = data.x_train, data.x_test
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    result = tfopt.export.to_tflite(qat, tmp_path / "exp.tflite", verify_data=x_test)
    census = tfopt.export.op_census(result.path)
    assert [o.input_dtypes[0] for o in census.of_type("EXP")] == ["float32"]
    assert [o.input_dtypes[0] for o in census.of_type("CONV_2D")] == ["int8"]
    assert any("EXP" in note for note in result.notes), result.notes
    within, worst = helpers.parity_in_steps(result.parity, qat, x_test)
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)


def test_operation_registrations_are_listed():
    names = tq.supported_layers()
    assert {"ops.Add", "ops.Multiply", "ops.Mean", "ops.Reshape", "Add"} <= set(names)


@pytest.mark.parametrize("activation", ["elu", "mish", "softplus", "log_softmax"])
def test_activation_without_int8_kernel_stays_float(activation, data, tmp_path):
    """No int8 kernel (or one with a scale tfopt does not model: log_softmax ran as an
    int8 LOG_SOFTMAX, 68.8% within one step): left float, with a warning."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((64,))
    model = keras.Model(inp, L.Dense(10)(L.Activation(activation)(L.Dense(16)(inp))))
    with pytest.warns(UserWarning, match="stay float"):
        qat = tq.quantize_model(model)
    x_train, x_test = data.x_train.reshape((-1, 64)), data.x_test.reshape((-1, 64))
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    result = tfopt.export.to_tflite(qat, tmp_path / f"{activation}.tflite", verify_data=x_test)
    census = tfopt.export.op_census(result.path)
    assert {o.input_dtypes[0] for o in census.of_type("FULLY_CONNECTED")} == {"int8"}
    assert {o.op for o in census.float_ops()} - {"CAST"}, "the activation runs float"
    within, worst = helpers.parity_in_steps(result.parity, qat, x_test)
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)


def _convnext_block(i):
    """keras.applications.ConvNeXt's pieces: a nested Sequential stem, depthwise conv,
    LayerNormalization (float), Dense on a 4-D map, GELU, LayerScale, residual ops.Add."""
    from keras.src.applications.convnext import LayerScale

    stem = keras.Sequential(
        [L.Conv2D(8, 2, strides=2), L.LayerNormalization(epsilon=1e-6)], name="stem"
    )
    x = stem(i)
    h = L.DepthwiseConv2D(3, padding="same")(x)
    h = L.LayerNormalization(epsilon=1e-6)(h)
    h = L.Dense(16, activation="gelu")(h)
    h = LayerScale(1e-1, 8)(L.Dense(8)(h))
    return L.Dense(10)(L.GlobalAveragePooling2D()(x + h))


def test_convnext_block_nested_sequential_layer_norm_layer_scale(data, tmp_path):
    with pytest.warns(UserWarning, match="stay float"):  # the LayerNormalizations
        qat, x_test, result = _qat_export((8, 8, 1), _convnext_block, data, tmp_path / "c.tflite")
    assert "stem" not in {layer.name for layer in qat.layers}  # inlined
    census = tfopt.export.op_census(result.path)
    assert {o.input_dtypes[0] for o in census.of_type("CONV_2D")} == {"int8"}
    assert {o.input_dtypes[0] for o in census.of_type("FULLY_CONNECTED")} == {"int8"}
    assert [o.input_dtypes[0] for o in census.of_type("GELU")] == ["int8"]
    assert "RSQRT" in {o.op for o in census.float_ops()}  # LayerNormalization, float
    within, worst = helpers.parity_in_steps(result.parity, qat, x_test)
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)


def test_text_transformer_embedding_and_attention_int8(tmp_path):
    """Embedding (int8 GATHER) and MultiHeadAttention (its projections FULLY_CONNECTED,
    the attention products BATCH_MATMUL and the SOFTMAX, all int8), Dense and GELU int8;
    LayerNormalization left float (named): an offline keyword task."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 50, size=(600, 12))
    labels = ((tokens == 7).any(1) | (tokens == 13).any(1)).astype("int32")
    keras.utils.set_random_seed(0)
    inp = keras.Input((12,), dtype="int32")
    e = L.Embedding(50, 16)(inp)
    h = L.LayerNormalization()(L.Add()([e, L.MultiHeadAttention(2, 8)(e, e)]))
    h = L.GlobalAveragePooling1D()(L.Dense(32, activation="gelu")(h))
    model = keras.Model(inp, L.Dense(2)(h))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", loss, metrics=["accuracy"])
    model.fit(tokens[:500], labels[:500], epochs=4, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        qat = tq.quantize_model(model)
    left_float = " ".join(str(w.message) for w in caught)
    assert "layer_normalization" in left_float and "multi_head_attention" not in left_float
    qat.compile("adam", loss, metrics=["accuracy"])
    qat.fit(tokens[:500], labels[:500], epochs=1, verbose=0)
    _, accuracy = qat.evaluate(tokens[500:], labels[500:], verbose=0)
    assert accuracy >= 0.9  # measured 1.0; the keyword rule is easy
    result = tfopt.export.to_tflite(qat, tmp_path / "text.tflite", verify_data=tokens[500:])
    census = tfopt.export.op_census(result.path)
    assert [o.output_dtypes[0] for o in census.of_type("GATHER")] == ["int8"]
    for op, count in (("BATCH_MATMUL", 2), ("SOFTMAX", 1), ("FULLY_CONNECTED", 6)):
        assert [o.input_dtypes[0] for o in census.of_type(op)] == ["int8"] * count, op
    assert not census.float_compute_ops()
    assert "RSQRT" in {o.op for o in census.float_ops()}  # LayerNormalization, float
    within, worst = helpers.parity_in_steps(result.parity, qat, tokens[500:])
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)


@pytest.mark.parametrize("recurrent", ["LSTM", "GRU", "Bidirectional"])
def test_recurrent_layers_take_the_hybrid_route(recurrent, tmp_path):
    """quantize_model refused LSTM/GRU; now the recurrent part stays float (warned, and
    named in the file: its WHILE loop) and the rest is int8; the file verifies."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10, 4)).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype("int32")
    layer = {
        "LSTM": lambda: L.LSTM(8),
        "GRU": lambda: L.GRU(8),
        "Bidirectional": lambda: L.Bidirectional(L.LSTM(8)),
    }[recurrent]()
    keras.utils.set_random_seed(0)
    inp = keras.Input((10, 4))
    h = layer(L.Conv1D(8, 3, padding="same", activation="relu")(inp))
    model = keras.Model(inp, L.Dense(2)(h))
    with pytest.warns(UserWarning, match=recurrent.lower()):
        qat = tq.quantize_model(model)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=1, verbose=0)
    result = tfopt.export.to_tflite(qat, tmp_path / "rnn.tflite", verify_data=x[:64])
    census = tfopt.export.op_census(result.path)
    assert [o.input_dtypes[0] for o in census.of_type("CONV_2D")] == ["int8"]
    assert "WHILE" in {o.op for o in census.float_ops()}
    assert any("WHILE" in note for note in result.notes), result.notes
    # The loop body's matmuls run float; the census reads the body too.
    in_body = [o for o in census.float_compute_ops() if o.graph > 0]
    assert in_body and {o.op for o in in_body} == {"FULLY_CONNECTED"}, census.nested
    assert all(o.graph > 0 for o in census.nested)
    within, worst = helpers.parity_in_steps(result.parity, qat, x[:64])
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)


@pytest.mark.parametrize(
    "inner, route",
    [("Dense", "quantize_model"), ("Conv2D", "quantize_model"), ("Dense", "annotate_apply")],
)
def test_time_distributed_layers_quantize_as_their_inner_layer(inner, route, tmp_path):
    """quantize_model refused TimeDistributed ("not supported by QAT"); now its layer runs
    on the time steps folded into the batch, int8 in the file, and the file verifies."""
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    if inner == "Dense":
        x = rng.normal(size=(128, 6, 5)).astype(np.float32)
        inp = keras.Input((6, 5))
        h = L.TimeDistributed(L.Dense(8, activation="relu"), name="td")(inp)
        h = L.GlobalAveragePooling1D()(h)
        compute = "FULLY_CONNECTED"
    else:
        x = rng.normal(size=(128, 4, 6, 6, 2)).astype(np.float32)  # 4 frames of 6x6
        inp = keras.Input((4, 6, 6, 2))
        h = L.TimeDistributed(L.Conv2D(4, 3, activation="relu"), name="td")(inp)
        h = L.Flatten()(h)
        compute = "CONV_2D"
    y = (x.reshape(128, -1).mean(1) > 0).astype("int32")
    model = keras.Model(inp, L.Dense(2)(h))
    if route == "quantize_model":
        qat = tq.quantize_model(model)
    else:
        qat = tq.quantize_apply(tq.quantize_annotate_model(model))
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=1, verbose=0)
    result = tfopt.export.to_tflite(qat, tmp_path / "td.tflite", verify_data=x[:64])
    census = tfopt.export.op_census(result.path)
    assert [o.input_dtypes[0] for o in census.of_type(compute)][:1] == ["int8"]
    assert not census.float_compute_ops(), census.table()
    within, worst = helpers.parity_in_steps(result.parity, qat, x[:64])
    assert within >= 0.999 and worst <= 2.0 + helpers.STEP_SLACK, (within, worst)


def test_time_distributed_needs_a_known_number_of_steps():
    inp = keras.Input((None, 5))
    model = keras.Model(inp, L.TimeDistributed(L.Dense(3), name="td")(inp))
    with pytest.raises(ValueError, match=r"'td' \(TimeDistributed\).*unknown time length"):
        tq.quantize_model(model)
