"""Normalising sample data (numpy, tf.data, generators) into model-ordered input lists."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping

import keras
import numpy as np
import tensorflow as tf


def _describe(x) -> str:
    if hasattr(x, "shape"):
        return f"{type(x).__name__} of shape {tuple(x.shape)}"
    return type(x).__name__


def _by_name(element, specs, argument):
    """A dict of arrays keyed by input name -> list of arrays in spec order.

    A key matches an input by its name, or by the name the exported file gives it
    (characters other than letters, digits and _ replaced by _).
    """
    names = [s.name for s in specs]
    found, extra = {}, []
    for key in element:
        name = key if key in names else _file_name(key)
        if name in names and name not in found:
            found[name] = key
        else:
            extra.append(key)
    missing = [n for n in names if n not in found]
    if missing or extra:
        told = []
        if missing:
            told.append(f"missing {missing}")
        if extra:
            told.append(f"not inputs of the model: {extra}")
        raise ValueError(
            f"Argument `{argument}` must be keyed by the model's input names {names} (one "
            f"array each, in any order). Received: {argument} with keys "
            f"{[*element]} ({'; '.join(told)})."
        )
    return [np.asarray(element[found[n]]) for n in names]


def _file_name(key):
    from tfopt.export._model import _safe_name

    return _safe_name(key, 0) if isinstance(key, str) and key else key


def _to_list(element, specs, argument):
    """One element (array, tuple/list, dict, or (x, y)) -> list of arrays in spec order."""
    names = [s.name for s in specs]
    if isinstance(element, Mapping):
        return _by_name(element, specs, argument)
    if isinstance(element, (tuple, list)):
        if len(specs) == 1 and len(element) == 2 and not np.isscalar(element[0]):
            # (x, y) as yielded by a labelled dataset: keep x.
            first = element[0]
            if isinstance(first, (tuple, list, Mapping)):
                return _to_list(first, specs, argument)
            return [np.asarray(first)]
        if len(specs) > 1 and len(element) == 2 and isinstance(element[0], (tuple, list, Mapping)):
            return _to_list(element[0], specs, argument)
        keys = getattr(specs, "dict_keys", None)
        if keys:
            shown = ", ".join(f"{k!r}: ..." for k in keys)
            raise ValueError(
                f"Argument `{argument}` must be a dict keyed by input name: the model takes a "
                f"dict of inputs {list(keys)}, which Keras orders by sorted key "
                f"({sorted(keys)}), so a list of {len(element)} arrays could be meant in "
                f"either order. Received: a {type(element).__name__}. Pass "
                f"{argument}={{{shown}}}."
            )
        if len(element) != len(specs):
            hint = ""
            if len(specs) == 1 and all(np.ndim(e) == len(specs[0].shape) - 1 for e in element):
                hint = (
                    f" It looks like a list of {len(element)} single samples: stack them into "
                    f"one array, {argument}=np.stack(samples)."
                )
            raise ValueError(
                f"Argument `{argument}`: the model has {len(specs)} inputs {names}; an element "
                f"holds {len(element)} arrays.{hint}"
            )
        return [np.asarray(e) for e in element]
    return [np.asarray(element)]


def _check_numeric(arrays, specs, argument):
    for array, spec in zip(arrays, specs):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise TypeError(
                f"Argument `{argument}` must hold numbers for input {spec.name!r}; received an "
                f"array of dtype {array.dtype}. Convert it, e.g. x.astype('float32')."
            )


def _check_shapes(arrays, specs, argument):
    if len(arrays) != len(specs):
        raise ValueError(
            f"Argument `{argument}`: the model has {len(specs)} inputs "
            f"{[s.name for s in specs]}; received {len(arrays)} array(s). Pass one array per "
            "input, as a list in that order or a dict by name."
        )
    _check_numeric(arrays, specs, argument)
    for a, s in zip(arrays, specs):
        expected = tuple(s.shape[1:])
        got = tuple(a.shape[1:]) if a.ndim == len(s.shape) else tuple(a.shape)
        if a.ndim not in (len(s.shape), len(s.shape) - 1) or any(
            e is not None and e != g for e, g in zip(expected, got)
        ):
            raise ValueError(
                f"Argument `{argument}` does not match the model input '{s.name}': expected "
                f"samples of shape {expected} (batches of shape {(None, *expected)}), received "
                f"an array of shape {tuple(a.shape)}."
            )


def _batched(arrays, specs):
    """Adds a batch axis to unbatched elements (a generator yielding single samples)."""
    return [a[None] if a.ndim == len(s.shape) - 1 else a for a, s in zip(arrays, specs)]


def sample_batches(data, specs, argument: str) -> Iterable[list[np.ndarray]]:
    """Yields lists of arrays (one per input, in spec order) from the user's data.

    Accepts a numpy array (single input), a list/tuple/dict of arrays (one per input),
    a tf.data.Dataset (of x or (x, y)), or an iterable/generator/callable yielding those.
    """
    if data is None:
        raise ValueError(f"Argument `{argument}` is required here. Received: {argument}=None")
    if isinstance(data, keras.layers.Layer):
        raise TypeError(
            f"Argument `{argument}` must hold input samples, not a Keras layer or model. "
            f"Received: {argument} of type {type(data).__name__}"
        )
    if isinstance(data, np.ndarray) or (
        isinstance(data, (tuple, list, Mapping)) and _all_arrays(data)
    ):
        arrays = _to_list(data, specs, argument)
        arrays = [np.asarray(a) for a in arrays]
        _check_shapes(arrays, specs, argument)
        arrays = _batched(arrays, specs)
        n = arrays[0].shape[0]
        if n == 0:
            raise ValueError(f"Argument `{argument}` is empty: it holds 0 samples.")
        if any(a.shape[0] != n for a in arrays):
            raise ValueError(
                f"Argument `{argument}`: inputs hold different numbers of samples "
                f"{[a.shape[0] for a in arrays]}."
            )
        return _from_arrays(arrays)
    if isinstance(data, (str, bytes)) or np.isscalar(data):
        raise TypeError(
            f"Argument `{argument}` must be a numpy array, a list/dict of arrays (one per "
            f"input), a tf.data.Dataset, or a generator. Received: {argument}={data!r}"
        )
    if isinstance(data, tf.data.Dataset):
        iterator = data.as_numpy_iterator()
    elif isinstance(data, Callable) and not hasattr(data, "__next__"):
        produced = data()
        if not isinstance(produced, Iterable) or isinstance(produced, (str, bytes)):
            raise TypeError(
                f"Argument `{argument}`: a callable must return an iterable of input "
                f"batches (a generator). It returned {_describe(produced)}."
            )
        iterator = iter(produced)
    elif isinstance(data, Iterable):
        iterator = iter(data)
    else:
        raise TypeError(
            f"Argument `{argument}` must be a numpy array, a list/dict of arrays (one per "
            f"input), a tf.data.Dataset, or a generator. Received: {_describe(data)}"
        )
    return _from_iterator(iterator, specs, argument)


def _all_arrays(data) -> bool:
    values = data.values() if isinstance(data, Mapping) else data
    return all(isinstance(v, np.ndarray) for v in values)


def _from_arrays(arrays):
    def gen():
        n = arrays[0].shape[0]
        for start in range(n):
            yield [a[start : start + 1] for a in arrays]

    return gen()


def _from_iterator(iterator, specs, argument):
    def gen():
        empty = True
        for element in iterator:
            arrays = _to_list(element, specs, argument)
            _check_shapes(arrays, specs, argument)
            arrays = _batched(arrays, specs)
            if len({a.shape[0] for a in arrays}) > 1:
                raise ValueError(
                    f"Argument `{argument}`: an element holds different numbers of samples per "
                    f"input {[a.shape[0] for a in arrays]}."
                )
            for start in range(arrays[0].shape[0]):
                empty = False
                yield [a[start : start + 1] for a in arrays]
        if empty:
            raise ValueError(f"Argument `{argument}` is empty: it yielded no samples.")

    return gen()


def collect(data, specs, argument: str, limit: int | None = None) -> list[np.ndarray]:
    """All samples (up to `limit`) as one array per input, cast to the spec dtypes."""
    rows = list(itertools.islice(sample_batches(data, specs, argument), limit))
    if not rows:
        raise ValueError(f"Argument `{argument}` is empty: it holds 0 samples.")
    arrays = [
        np.concatenate([r[i] for r in rows], axis=0).astype(s.dtype.as_numpy_dtype)
        for i, s in enumerate(specs)
    ]
    for array, spec in zip(arrays, specs):
        if np.issubdtype(array.dtype, np.floating):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            if bad:
                raise ValueError(
                    f"Argument `{argument}` holds {bad} NaN or infinite values (of "
                    f"{np.size(array)}) for input {spec.name!r}. Every sample must be finite: "
                    "drop or repair those samples, e.g. x[np.isfinite(x).all(axis=tuple(range("
                    "1, x.ndim)))]."
                )
    return arrays


def by_name(arrays, specs) -> dict[str, np.ndarray]:
    """Arrays in spec order as a dict keyed by input name (what `collect` reads back in
    the same order, for a model of any input structure)."""
    return {s.name: a for s, a in zip(specs, arrays)}


def robust_peak(array: np.ndarray) -> float:
    """The 99.9th percentile of |x|: the scale of a data set, blind to a few outliers."""
    return float(np.percentile(np.abs(array.astype(np.float64)), 99.9)) if array.size else 0.0


# Calibration and verification data whose scales differ by more than this factor are
# not the same kind of data (e.g. pixels in 0..255 against 0..1).
SCALE_MISMATCH = 8.0


def check_same_scale(calibration, check_inputs, specs) -> None:
    """Refuses calibration data on another scale than the data the file is verified on.

    Raises:
        ValueError: a robust peak |x| ratio above SCALE_MISMATCH for some input.
    """
    for cal, ref, spec in zip(calibration, check_inputs, specs):
        if not np.issubdtype(cal.dtype, np.floating):
            continue
        a, b = robust_peak(cal), robust_peak(ref)
        if min(a, b) == 0.0 and max(a, b) == 0.0:
            continue
        ratio = max(a, b) / max(min(a, b), 1e-30)
        if ratio > SCALE_MISMATCH:
            raise ValueError(
                f"Arguments `representative_data` and `verify_data` are on different scales "
                f"for input {spec.name!r}: 99.9% of |representative_data| is below {a:.4g}, of "
                f"|verify_data| below {b:.4g} ({ratio:.1f}x). Int8 calibration on data the "
                "model will not see gives a file that is wrong on the data it will see: "
                "calibrate on samples prepared exactly as the inputs at inference (same "
                "dtype, scaling and normalization)."
            )
