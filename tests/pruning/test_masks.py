import numpy as np
import pytest

from tfopt.pruning import masks


def _np_magnitude(w, sparsity):
    # Reference: keep the k largest |w|, k = max(round(size * (1 - s)), 1) in float32
    # (tfmot's rule; np.round and tf.round both round half to even).
    k = max(int(np.round(np.float32(w.size) * (np.float32(1) - np.float32(sparsity)))), 1)
    threshold = np.sort(np.abs(w).ravel())[::-1][k - 1]
    return (np.abs(w) >= threshold).astype(np.float32)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.8, 0.9, 0.99])
@pytest.mark.parametrize("shape", [(7,), (13, 5), (3, 3, 4, 6)])
def test_magnitude_mask_matches_reference(shape, sparsity):
    w = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    mask = np.asarray(masks.magnitude_mask(w, np.float32(sparsity)))
    np.testing.assert_array_equal(mask, _np_magnitude(w, sparsity))
    # float32 as in tfmot: 65 * (1 - 0.9) is 6.5000014 in float32, so 7 are kept.
    expected_kept = max(int(np.round(np.float32(w.size) * (1 - np.float32(sparsity)))), 1)
    assert int(mask.sum()) == expected_kept  # distinct values: exactly k kept


def test_magnitude_mask_keeps_ties():
    w = np.array([0.1, -0.5, 0.5, 0.2], np.float32)  # k = 1 but |w| = 0.5 twice
    np.testing.assert_array_equal(masks.magnitude_mask(w, np.float32(0.75)), [0, 1, 1, 0])


@pytest.mark.parametrize("pooling", ["AVG", "MAX"])
def test_block_mask_prunes_whole_blocks(pooling):
    w = np.random.default_rng(2).normal(size=(6, 5)).astype(np.float32)
    mask = np.asarray(masks.block_mask(w, np.float32(0.5), (2, 2), pooling))
    # Reference: pool |w| over each (possibly partial) 2x2 block, then tfmot's rule.
    pooled = np.zeros((3, 3), np.float32)
    for i in range(3):
        for j in range(3):
            block = np.abs(w[2 * i : 2 * i + 2, 2 * j : 2 * j + 2])
            pooled[i, j] = block.mean() if pooling == "AVG" else block.max()
    expected = np.kron(_np_magnitude(pooled, 0.5), np.ones((2, 2)))[:6, :5]
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize(("shape", "axis"), [((8, 5), 0), ((3, 3, 8, 4), -2), ((2, 8), 1)])
def test_m_by_n_mask_keeps_largest_per_group(shape, axis):
    w = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    mask = np.asarray(masks.m_by_n_mask(w, 2, 4, axis))
    groups = np.moveaxis(mask, axis, -1).reshape(-1, 4)
    values = np.abs(np.moveaxis(w, axis, -1).reshape(-1, 4))
    assert np.all(groups.sum(axis=1) == 2)
    kept_min = np.where(groups == 1, values, np.inf).min(axis=1)
    pruned_max = np.where(groups == 0, values, -np.inf).max(axis=1)
    assert np.all(kept_min >= pruned_max)
    assert masks.m_by_n_conformance(w * mask, 2, 4, axis) == 1.0
    assert masks.m_by_n_conformance(w, 2, 4, axis) == 0.0  # dense normal weights: no zeros


def test_m_by_n_partial_group_and_conformance():
    w = np.arange(1, 7, dtype=np.float32).reshape(1, 6)  # groups [1..4], [5, 6]
    mask = np.asarray(masks.m_by_n_mask(w, 2, 4, axis=1))
    np.testing.assert_array_equal(mask, [[0, 0, 1, 1, 1, 1]])  # a partial group of 2 keeps 2
    assert masks.m_by_n_conformance(w * mask, 2, 4, axis=1) == 1.0
    half = np.array([[0, 0, 1, 1], [0, 1, 1, 1]], np.float32)
    assert masks.m_by_n_conformance(half, 2, 4, axis=1) == 0.5


def test_kth_largest_is_the_sorted_value_exactly():
    """The bisection over float bit patterns returns what a sort returns: random
    magnitudes, repeated values, zeros, denormals, one element, every k."""
    rng = np.random.default_rng(3)
    cases = [
        np.abs(rng.normal(size=1000)).astype(np.float32),
        np.repeat(np.abs(rng.normal(size=50)), 20).astype(np.float32),  # ties
        np.concatenate([np.zeros(300), np.abs(rng.normal(size=30))]).astype(np.float32),
        np.array([1e-45, 3e-42, 0.0, 2.5, 1e30], np.float32),  # denormals and a huge one
        np.array([0.7], np.float32),
        np.zeros(9, np.float32),
    ]
    for values in cases:
        ordered = np.sort(values)[::-1]
        n = len(values)
        for k in sorted({1, min(2, n), max(n // 2, 1), max(n - 1, 1), n}):
            got = float(masks.kth_largest(values, np.int32(k)))
            assert got == float(ordered[k - 1]), (values[:5], k, got, ordered[k - 1])
