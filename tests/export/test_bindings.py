"""Inputs and outputs bound by name: dict inputs in any key order, lists in model order,
dict outputs, for every exporter and verify, with no Keras structure warning."""

import warnings

import keras
import numpy as np
import pytest

from tfopt import export
from tfopt import quantization as tq

L = keras.layers
FLOAT_TOL = 1e-5  # the float bar of test_parity.py


def _dict_model():
    """The issue's model: a dict of inputs whose keys are not in alphabetical order."""
    zeta = keras.Input((4,), name="zeta")
    alpha = keras.Input((3,), name="alpha")
    x = L.Dense(8, activation="relu")(L.Concatenate()([zeta, alpha]))
    return keras.Model({"zeta": zeta, "alpha": alpha}, L.Dense(2)(x), name="dict_inputs")


def _data(n=32, seed=0):
    """Inputs on different scales, so int8 calibrated on a swapped pair would fail."""
    rng = np.random.default_rng(seed)
    return {
        "zeta": rng.standard_normal((n, 4)).astype("float32"),
        "alpha": 4 * rng.standard_normal((n, 3)).astype("float32"),
    }


@pytest.fixture
def structure_messages(monkeypatch):
    """Every "structure of `inputs` doesn't match" Keras would warn about.

    The exporters silence warnings while the converters trace, so a spy on Keras's
    check (private, hence `raising=True`) sees those too; warnings that reach the
    caller are recorded as well.
    """
    from keras.src.models.functional import Functional

    seen = []
    original = Functional._maybe_warn_inputs_struct_mismatch

    def spy(self, inputs, raise_exception=False):
        try:
            original(self, inputs, raise_exception=True)
        except ValueError as err:
            seen.append(str(err))
        return original(self, inputs, raise_exception=raise_exception)

    monkeypatch.setattr(Functional, "_maybe_warn_inputs_struct_mismatch", spy, raising=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield seen
    seen.extend(str(w.message) for w in caught if "expected structure" in str(w.message))


@pytest.fixture(scope="module")
def dict_model():
    keras.utils.set_random_seed(0)
    return _dict_model()


@pytest.fixture(scope="module")
def qat_dict_model():
    keras.utils.set_random_seed(0)
    qat = tq.quantize_model(_dict_model())
    qat.compile("adam", "mse")
    data = _data(64, seed=2)
    qat.fit(data, np.zeros((64, 2), "float32"), epochs=1, batch_size=16, verbose=0)
    return qat


@pytest.mark.parametrize(
    "suffix, options",
    [
        (".tflite", {}),
        (".tflite", {"quantization": "dynamic"}),
        (".tflite", {"quantization": "float16"}),
        (".tflite", {"quantization": "int8", "representative_data": _data()}),
        (".tflite", {"quantization": "int8", "representative_data": _data(), "int8_io": True}),
        (".onnx", {}),
    ],
    ids=["float", "dynamic", "float16", "int8", "int8_io", "onnx"],
)
def test_dict_inputs_in_any_key_order(dict_model, structure_messages, tmp_path, suffix, options):
    data = _data()
    path = tmp_path / f"m{suffix}"
    result = export.export_model(dict_model, path, verify_data=data, **options)
    assert result.verified_on == "data" and result.parity.num_samples == 32
    expected = np.asarray(dict_model(data, training=False))
    np.testing.assert_allclose(result.parity.outputs[0], expected, atol=0.1)  # int8 at worst
    if options.get("quantization") in (None, "dynamic"):
        assert result.parity.max_abs_error <= FLOAT_TOL, result
    # The published file binds by name too: a dict in the other order gives the same.
    again = export.verify(path, dict_model, {"alpha": data["alpha"], "zeta": data["zeta"]})
    np.testing.assert_array_equal(again.outputs[0], result.parity.outputs[0])
    assert structure_messages == []


def test_sorted_dict_inputs_trace_without_a_structure_warning(structure_messages, tmp_path):
    """Keys in sorted order converted before, with Keras warning (inside the converter)
    that a list was passed for a dict."""
    alpha = keras.Input((3,), name="alpha")
    zeta = keras.Input((4,), name="zeta")
    model = keras.Model({"alpha": alpha, "zeta": zeta}, L.Dense(2)(L.Concatenate()([zeta, alpha])))
    for path in (tmp_path / "m.tflite", tmp_path / "m.onnx"):
        result = export.export_model(model, path, verify_data=_data())
        assert result.parity.max_abs_error <= FLOAT_TOL, result
    assert structure_messages == []


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_qat_model_of_dict_inputs(qat_dict_model, structure_messages, tmp_path, suffix):
    result = export.export_model(qat_dict_model, tmp_path / f"q{suffix}", verify_data=_data())
    assert result.quantization in ("int8-qat", "qdq-u8s8"), result
    assert result.parity.within_one_step >= 0.99, result
    assert structure_messages == []


def test_lists_bind_in_the_models_order(structure_messages, tmp_path):
    zeta = keras.Input((4,), name="zeta")
    alpha = keras.Input((3,), name="alpha")  # same width as zeta would hide a swap: not here
    out = L.Dense(2)(L.Concatenate()([zeta, alpha]))
    model = keras.Model([zeta, alpha], out)
    data = _data()
    as_list = [data["zeta"], data["alpha"]]
    for path in (tmp_path / "m.tflite", tmp_path / "m.onnx"):
        result = export.export_model(model, path, verify_data=as_list)
        assert result.parity.max_abs_error <= FLOAT_TOL, result
        by_dict = export.verify(path, model, data)
        np.testing.assert_array_equal(by_dict.outputs[0], result.parity.outputs[0])
    assert structure_messages == []


def test_dict_outputs_bind_by_name(structure_messages, tmp_path):
    """Outputs "out_10" and "out_2": Keras orders them as strings, LiteRT's signature by
    their number; the files' outputs must come back in the model's order."""
    inputs = keras.Input((5,), name="features")
    x = L.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, {"out_2": L.Dense(2)(x), "out_10": L.Dense(3)(x)})
    x = np.random.default_rng(0).standard_normal((16, 5)).astype("float32")
    expected = model(x, training=False)
    for path in (tmp_path / "m.tflite", tmp_path / "m.onnx"):
        result = export.export_model(model, path, verify_data=x)
        assert [o.shape for o in result.parity.outputs] == [(16, 3), (16, 2)], path
        np.testing.assert_allclose(result.parity.outputs[0], expected["out_10"], atol=FLOAT_TOL)
        assert result.parity.max_abs_error <= FLOAT_TOL, result
    import onnx

    assert [o.name for o in onnx.load(str(tmp_path / "m.onnx")).graph.output] == [
        "out_10",
        "out_2",
    ]
    assert structure_messages == []


@pytest.mark.parametrize(
    "data, says",
    [
        (
            {"zeta": np.zeros((4, 4), "float32")},
            r"Received: .* keys \['zeta'\] \(missing \['alpha'\]",
        ),
        (
            {**_data(4), "beta": np.zeros((4, 3), "float32")},
            r"keys \['zeta', 'alpha', 'beta'\] \(not inputs of the model: \['beta'\]\)",
        ),
    ],
    ids=["missing", "extra"],
)
def test_dict_data_with_wrong_keys(dict_model, tmp_path, data, says):
    names = r"must be keyed by the model's input names \['alpha', 'zeta'\]"
    with pytest.raises(ValueError, match=rf"Argument `verify_data` {names}.*{says}"):
        export.to_onnx(dict_model, tmp_path / "m.onnx", verify_data=data)
    with pytest.raises(ValueError, match=rf"Argument `representative_data` {names}.*{says}"):
        export.to_tflite(dict_model, tmp_path / "m.tflite", "int8", representative_data=data)
    export.to_tflite(dict_model, tmp_path / "ok.tflite")
    with pytest.raises(ValueError, match=rf"Argument `inputs` {names}.*{says}"):
        export.verify(tmp_path / "ok.tflite", dict_model, data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.tflite"]


def test_a_list_for_unsorted_dict_inputs_is_refused(dict_model, tmp_path):
    """Keras orders the inputs alpha, zeta; the model was built zeta, alpha: a list could
    mean either, and with equal shapes a swap would go unseen."""
    data = _data(4)
    with pytest.raises(ValueError, match=r"Argument `verify_data` must be a dict keyed by"):
        export.to_tflite(dict_model, tmp_path / "m.tflite", verify_data=list(data.values()))
    assert not list(tmp_path.iterdir())
