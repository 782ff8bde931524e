"""Shared helpers for the QAT tests: tiny models, a one-epoch QAT fit, parity in steps."""

from __future__ import annotations

import keras
import numpy as np

import tfopt

L = keras.layers

# Slack of the one-step check, in output steps: Keras' fake-quant output and the
# runtime's dequantized int8 are both on the same grid but reach it through different
# float32 arithmetic, so an element exactly one step off can read as 1 + k*2^-23*255
# steps (255 codes at most, float32 epsilon 2^-23 ~ 1.2e-7): 1e-4 covers it, and
# nothing near two steps.
STEP_SLACK = 1e-4
# The bar: >= 99.9% of output elements within one step. A rare element may
# be two steps off: the int8 kernels round each layer's requantization in fixed
# point, so a one-step difference inside the graph can add to one at the output.


def digits():
    return tfopt.datasets.load_digits()


def small_cnn(name="cnn"):
    """Conv+BN+ReLU, depthwise+ReLU6 residual Add, pooling, Dense: the core layer set."""
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inp)
    x = L.BatchNormalization()(x)
    x = L.ReLU(name="relu")(x)
    y = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    y = L.ReLU(6.0)(y)
    x = L.Add()([x, y])
    x = L.MaxPooling2D(name="maxpool")(x)
    x = L.Conv2D(16, 1, activation="relu")(x)
    x = L.Concatenate(name="concat")(
        [L.Conv2D(4, 1, name="left")(x), L.Conv2D(4, 1, activation="relu", name="right")(x)]
    )
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.1)(x)
    x = L.Dense(10, name="logits")(x)
    return keras.Model(inp, x, name=name)


def compile_fit(model, data, epochs=1, batch_size=32, lr=1e-3):
    model.compile(
        keras.optimizers.Adam(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def parity_in_steps(parity, model, x):
    """(fraction within one output step, max error in steps) of a VerifyResult."""
    expected = np.asarray(model.predict(x, verbose=0, batch_size=256), np.float64)
    got = np.asarray(parity.outputs[0], np.float64)
    steps = np.abs(got - expected) / parity.output_step
    return float(np.mean(steps <= 1.0 + STEP_SLACK)), float(steps.max())


def litert_kernel_agreement(path, x, output_step) -> tuple[float, float]:
    """(fraction within one output step, worst steps) between LiteRT's default kernels
    (XNNPACK) and its reference kernels, running the same file on `x`.

    Two correct int8 runtimes may round a requantization differently near a half-step
    boundary; in a deep network those one-step differences compound. This measures how
    far LiteRT agrees with itself, the floor for any model's parity on that file.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    def run(**kwargs):
        interpreter = Interpreter(model_path=str(path), **kwargs)
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        assert out["dtype"] == np.float32, "float I/O expected"
        interpreter.resize_tensor_input(inp["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(out["index"]), np.float64)

    default = run()
    reference = run(experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    steps = np.abs(default - reference) / output_step
    return float(np.mean(steps <= 1.0 + STEP_SLACK)), float(steps.max())
