import keras
import numpy as np

from tfopt import quantization as tq


def _range_values(model):
    return [w.numpy().copy() for w in model.non_trainable_weights]


def test_keras_file_loads_without_custom_objects(qat_cnn, data, tmp_path):
    path = tmp_path / "qat.keras"
    qat_cnn.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects, no scope
    assert [type(a) for a in loaded.layers] == [type(b) for b in qat_cnn.layers]
    for a, b in zip(_range_values(loaded), _range_values(qat_cnn)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        loaded.predict(data.x_test, verbose=0), qat_cnn.predict(data.x_test, verbose=0)
    )
    # Training resumes from the saved ranges, step counts and optimizer state.
    counts = {
        w.path: float(w.numpy()) for w in loaded.non_trainable_weights if w.name.endswith("count")
    }
    assert counts and min(counts.values()) > 0
    loaded.fit(data.x_train[:64], data.y_train[:64], batch_size=32, epochs=1, verbose=0)
    after = {w.path: float(w.numpy()) for w in loaded.non_trainable_weights if w.path in counts}
    assert all(after[k] == counts[k] + 2 for k in counts)  # two more batches observed


def test_wrapper_and_layer_configs_round_trip(qat_cnn):
    for layer in qat_cnn.layers:
        if isinstance(layer, (tq.QuantizeWrapper, tq.QuantizeLayer)):
            config = keras.saving.serialize_keras_object(layer)
            clone = keras.saving.deserialize_keras_object(config)
            assert type(clone) is type(layer)
            assert clone.get_config() == layer.get_config()


def test_quantize_config_round_trip():
    qc = tq.LayerQuantizeConfig(
        weights={"kernel": "depthwise"},
        quantize_output=False,
        config=tq.QuantizationConfig.from_preset("tensorrt"),
    )
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(qc))
    assert clone.get_config() == qc.get_config()
