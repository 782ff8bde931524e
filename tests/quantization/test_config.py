import dataclasses

import pytest

from tfopt.quantization import QuantizationConfig
from tfopt.quantization.config import resolve_config


def test_tflite_preset_is_tflite_int8_spec():
    config = QuantizationConfig.from_preset("tflite")
    assert (config.weight_bits, config.activation_bits) == (8, 8)
    assert config.per_channel and not config.dense_per_channel
    assert config.symmetric_weights and config.narrow_range
    assert not config.symmetric_activations


def test_tensorrt_preset_is_symmetric_per_channel():
    config = QuantizationConfig.from_preset("TensorRT")
    assert config.symmetric_activations and config.dense_per_channel and config.per_channel


def test_round_trip_and_replace():
    config = dataclasses.replace(QuantizationConfig.from_preset("tflite"), weight_bits=4)
    assert QuantizationConfig.from_config(config.get_config()) == config
    assert config.weight_bits == 4


@pytest.mark.parametrize("bits", [1, 9, 8.0, True])
def test_weight_bits_out_of_range(bits):
    with pytest.raises(ValueError, match=r"`weight_bits` must be an int from 2 to 8"):
        QuantizationConfig(weight_bits=bits)


def test_activation_bits_other_than_8_or_16():
    with pytest.raises(ValueError, match="activation_bits=12"):
        QuantizationConfig(activation_bits=12)
    # 16 bits is TFLite's 16x8 mode, whose int16 activations have zero-point 0.
    with pytest.raises(ValueError, match="`symmetric_activations` must be True"):
        QuantizationConfig(activation_bits=16)
    assert QuantizationConfig(activation_bits=16, symmetric_activations=True).activation_bits == 16


def test_bad_decay_and_flag():
    with pytest.raises(ValueError, match="ema_decay=1.0"):
        QuantizationConfig(ema_decay=1.0)
    with pytest.raises(TypeError, match="per_channel='yes'"):
        QuantizationConfig(per_channel="yes")


def test_resolve():
    assert resolve_config(None).name == "tflite"
    assert resolve_config("tensorrt").name == "tensorrt"
    assert resolve_config("tflite16x8").activation_bits == 16
    with pytest.raises(ValueError, match="Presets: 'tflite', 'tensorrt', 'tflite16x8'"):
        resolve_config("coreml")
    with pytest.raises(TypeError, match="Received: config of type int"):
        resolve_config(3)
