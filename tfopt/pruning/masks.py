"""Mask rules: magnitude (tfmot's), block-pooled magnitude, m:n, random.

Each function takes the weight (or score) tensor and returns a float mask of
the same shape and dtype: 1 keeps a weight, 0 prunes it. `m_by_n_conformance`
checks a NumPy array after the fact.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def magnitude_mask(weights, sparsity):
    """Keeps the `k = max(round(size * (1 - sparsity)), 1)` largest |w| (tfmot's rule).

    Ties with the k-th largest magnitude are kept too, as in tfmot, so the same
    weights and sparsity select the same positions.

    Args:
        weights: weight tensor of any shape.
        sparsity: float32 scalar in [0, 1).

    Returns:
        A mask with the shape and dtype of `weights`.
    """
    abs_weights = ops.abs(weights)
    flat = ops.reshape(abs_weights, (-1,))
    size = int(flat.shape[0])
    keep = ops.round(ops.multiply(float(size), ops.subtract(1.0, ops.cast(sparsity, "float32"))))
    k = ops.cast(ops.maximum(keep, 1.0), "int32")
    threshold = kth_largest(flat, k)
    return ops.cast(ops.greater_equal(abs_weights, threshold), weights.dtype)


def kth_largest(values, k):
    """The `k`-th largest of the non-negative floats `values` (rank 1), exactly.

    A bisection over the values' IEEE-754 bit patterns, which for non-negative floats
    order as the integers do: at most 31 counting passes over `values`, O(n), instead
    of an O(n log n) sort (BENCHMARKS.md's "Scale" section times the mask update).

    Args:
        values: rank-1 float tensor of values >= 0 (magnitudes).
        k: int32 scalar in [1, len(values)].

    Returns:
        A scalar of the dtype of `values`: the same value `sort(values)[size - k]` gives.
    """
    import tensorflow as tf

    values = tf.convert_to_tensor(values)
    dtype = values.dtype
    bits = tf.bitcast(tf.cast(values, tf.float32), tf.int32)
    k = tf.cast(k, tf.int32)

    def step(low, high):  # invariant: count(bits >= low) >= k; the answer is in [low, high]
        mid = low + (high - low + 1) // 2
        enough = tf.reduce_sum(tf.cast(bits >= mid, tf.int32)) >= k
        return [tf.where(enough, mid, low), tf.where(enough, high, mid - 1)]

    low, _ = tf.while_loop(
        lambda low, high: low < high,
        step,
        [tf.constant(0, tf.int32), tf.reduce_max(bits)],
        maximum_iterations=32,
    )
    return tf.cast(tf.bitcast(low, tf.float32), dtype)


def block_mask(weights, sparsity, block_size: tuple[int, int], pooling: str = "AVG"):
    """Prunes whole `block_size` blocks of a rank-2 weight, ranked by pooled |w|.

    Blocks at the right/bottom edge may be partial; their pooled value uses
    only the weights they hold (like TF's SAME pooling that tfmot uses).

    Args:
        weights: rank-2 tensor.
        sparsity: float32 scalar in [0, 1).
        block_size: (rows, cols) of a block.
        pooling: "AVG" or "MAX". Defaults to `"AVG"`.

    Returns:
        A mask with the shape and dtype of `weights`.
    """
    rows, cols = (int(d) for d in weights.shape)
    bh, bw = block_size
    pad_r, pad_c = -rows % bh, -cols % bw
    padded = ops.pad(ops.abs(weights), [[0, pad_r], [0, pad_c]])
    blocks = ops.reshape(padded, ((rows + pad_r) // bh, bh, (cols + pad_c) // bw, bw))
    if pooling == "MAX":
        pooled = ops.max(blocks, axis=(1, 3))
    else:
        counts = np.pad(np.ones((rows, cols), np.float32), [[0, pad_r], [0, pad_c]])
        counts = counts.reshape(blocks.shape).sum(axis=(1, 3))
        pooled = ops.divide(ops.sum(blocks, axis=(1, 3)), ops.cast(counts, blocks.dtype))
    small = magnitude_mask(pooled, sparsity)
    full = ops.repeat(ops.repeat(small, bh, axis=0), bw, axis=1)
    return ops.cast(full[:rows, :cols], weights.dtype)


def m_by_n_mask(weights, m: int, n: int, axis: int):
    """Zeros the `m` smallest |w| in every group of `n` consecutive weights along `axis`.

    A last, partial group of `r < n` weights keeps at most `n - m` of them.

    Args:
        weights: weight tensor.
        m: zeros per group, `0 < m < n`.
        n: group length.
        axis: the axis the groups run along (the input-channel axis).

    Returns:
        A mask with the shape and dtype of `weights`.
    """
    moved = ops.moveaxis(ops.abs(weights), axis, -1)
    moved_shape = tuple(int(d) for d in moved.shape)
    length = moved_shape[-1]
    rows = int(np.prod(moved_shape[:-1]))
    pad = -length % n
    flat = ops.reshape(moved, (rows, length))
    flat = ops.pad(flat, [[0, 0], [0, pad]], constant_values=-1.0)  # padding is never kept
    groups = ops.reshape(flat, (rows, (length + pad) // n, n))
    _, keep = ops.top_k(groups, k=n - m, sorted=False)
    mask = ops.sum(ops.one_hot(keep, n, dtype=weights.dtype), axis=-2)
    mask = ops.reshape(mask, (rows, length + pad))[:, :length]
    return ops.moveaxis(ops.reshape(mask, moved_shape), -1, axis)


def m_by_n_conformance(array, m: int, n: int, axis: int) -> float:
    """Share of groups of `n` along `axis` holding at least `m` zeros (1.0 = conforming).

    A last, partial group of `r` weights conforms with at least `max(0, r - (n - m))`
    zeros, the most an m:n mask can zero there.

    Args:
        array: the weights (NumPy array or tensor).
        m: zeros required per group.
        n: group length.
        axis: the axis the groups run along.

    Returns:
        The fraction of conforming groups, in [0, 1].
    """
    moved = np.moveaxis(np.asarray(array), axis, -1)
    length = moved.shape[-1]
    zeros = moved.reshape(-1, length) == 0
    full, rest = divmod(length, n)
    ok = []
    if full:
        counts = zeros[:, : full * n].reshape(zeros.shape[0], full, n).sum(axis=-1)
        ok.append((counts >= m).ravel())
    if rest:
        ok.append(zeros[:, full * n :].sum(axis=-1) >= max(0, rest - (n - m)))
    return float(np.concatenate(ok).mean()) if ok else 1.0
