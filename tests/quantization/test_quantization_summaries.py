"""QuantizationSummaries: per-layer activation ranges in TensorBoard event files, read back."""

import glob
import os

import keras
import numpy as np
import pytest

from tfopt import quantization as tq
from tfopt.quantization.summaries import activation_ranges


def _tiny_qat():
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.ReLU(name="relu"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="tiny",
    )
    qat = tq.quantize_model(model)
    qat.compile(keras.optimizers.SGD(0.01), keras.losses.MeanSquaredError())
    return qat


def _read_scalars(log_dir):
    import tensorflow as tf

    files = glob.glob(os.path.join(str(log_dir), "metrics", "events.out.tfevents.*"))
    assert files, "no event file written"
    values = {}
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                values.setdefault(v.tag, []).append((event.step, float(tf.make_ndarray(v.tensor))))
    return values


def test_ranges_per_layer_are_logged_each_epoch(tmp_path):
    qat = _tiny_qat()
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1), dtype=np.float32)
    y = rng.random((64, 10), dtype=np.float32)
    summaries = tq.QuantizationSummaries(log_dir=tmp_path)
    qat.fit(x, y, batch_size=16, epochs=2, verbose=0,
            callbacks=[tq.QATCallback(), summaries])  # fmt: skip
    values = _read_scalars(tmp_path)
    # One range per quantizer: the input's (its layer is named after Keras's input
    # tensor), the conv's output (ReLU fused: the ReLU's wrapper holds it) and the
    # logits'; each with a min and a max.
    input_layer = next(layer.name for layer in qat.layers if layer.name.startswith("quantize_"))
    assert set(values) == {
        f"{layer}/output/{end}"
        for layer in (input_layer, "quant_relu", "quant_logits")
        for end in ("min", "max")
    }
    for points in values.values():
        assert [step for step, _ in points] == [4, 8]  # 64 / 16 = 4 steps per epoch
    # The values are the model's own trained ranges (what the exporters read).
    by_name = {layer.name: layer for layer in qat.layers}
    ((role, low, high),) = activation_ranges(by_name["quant_logits"])
    assert role == "output"
    assert values["quant_logits/output/min"][-1][1] == low  # float32 variables, written as float32
    assert values["quant_logits/output/max"][-1][1] == high
    assert values["quant_relu/output/min"][-1][1] == 0.0  # a ReLU's range starts at 0
    assert values["quant_relu/output/max"][-1][1] > 0.0
    assert low < 0.0 < high


def test_bad_arguments_and_a_float_model(tmp_path):
    with pytest.raises(ValueError, match="log_dir"):
        tq.QuantizationSummaries(log_dir="")
    with pytest.raises(ValueError, match="update_freq"):
        tq.QuantizationSummaries(log_dir=tmp_path, update_freq="batch")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="no quantization layers"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0,
                  callbacks=[tq.QuantizationSummaries(log_dir=tmp_path)])  # fmt: skip


def test_config_round_trip(tmp_path):
    callback = tq.QuantizationSummaries(log_dir=tmp_path)
    again = tq.QuantizationSummaries.from_config(callback.get_config())
    assert again.get_config() == {"log_dir": str(tmp_path), "update_freq": "epoch"}
