"""`sparsity_report(model)`: per-layer weights, zeros, sparsity and m:n conformance."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tfopt.pruning import prune_registry
from tfopt.pruning.masks import m_by_n_conformance
from tfopt.pruning.pruning_wrapper import PruneLowMagnitude, _check_m_by_n


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Rows of `sparsity_report`: one per prunable weight, plus totals.

    `rows` is a list of dicts with keys layer, weight, shape, size, zeros,
    sparsity and, when an m:n pattern is checked, m_by_n and m_by_n_conformance
    (share of groups holding at least m zeros; 1.0 means every group does).
    m_by_n_conformance is `None` (the table says "n/a") for a weight with fewer
    than n weights along its m:n axis: it holds no whole group, so the pattern
    cannot apply to it.
    """

    rows: list[dict]

    @property
    def total_size(self) -> int:
        """Number of prunable weights over all rows."""
        return int(sum(r["size"] for r in self.rows))

    @property
    def total_zeros(self) -> int:
        """Number of those weights that are exactly zero."""
        return int(sum(r["zeros"] for r in self.rows))

    @property
    def total_sparsity(self) -> float:
        """`total_zeros / total_size`, or 0.0 when there are no prunable weights."""
        return self.total_zeros / self.total_size if self.total_size else 0.0

    def to_dict(self) -> dict:
        """`{"layers": rows, "total": {...}}`, JSON-able."""
        return {
            "layers": [dict(r) for r in self.rows],
            "total": {
                "size": self.total_size,
                "zeros": self.total_zeros,
                "sparsity": self.total_sparsity,
            },
        }

    def table(self) -> str:
        """A printable table."""
        header = ("layer", "weight", "shape", "weights", "zeros", "sparsity", "m:n ok")
        lines = [header]
        for r in self.rows:
            mn = "-"
            if r.get("m_by_n"):
                share = r["m_by_n_conformance"]
                mn = f"{r['m_by_n'][0]}:{r['m_by_n'][1]} " + (
                    "n/a" if share is None else f"{share:.0%}"
                )
            lines.append(
                (
                    r["layer"],
                    r["weight"],
                    "x".join(map(str, r["shape"])),
                    str(r["size"]),
                    str(r["zeros"]),
                    f"{r['sparsity']:.1%}",
                    mn,
                )
            )
        lines.append(
            ("total", "", "", str(self.total_size), str(self.total_zeros),
             f"{self.total_sparsity:.1%}", "")
        )  # fmt: skip
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in lines
        )

    def __str__(self) -> str:
        return self.table()


def _walk(layer, out):
    if isinstance(layer, PruneLowMagnitude):
        out.append((layer.layer.name, layer.layer, layer))
        return
    if prune_registry.has_prunable_weights(layer) and layer.built:
        out.append((layer.name, layer, None))
        return
    for child in layer._flatten_layers(include_self=False, recursive=False):
        _walk(child, out)


def sparsity_report(model, m_by_n: tuple[int, int] | None = None) -> SparsityReport:
    """Reports weights, zeros and sparsity of every prunable weight in `model`.

    Works on a pruning model (wrapper layers) and on a stripped or plain model.

    Example:

    ```python
    report = tfopt.pruning.sparsity_report(model)
    print(report)            # table
    report.to_dict()         # {"layers": [...], "total": {...}}
    ```

    Args:
        model: a Keras model or layer.
        m_by_n: check conformance to this `(m, n)` pattern along each weight's
            input-channel axis; wrappers pruned with `sparsity_m_by_n` are
            checked against their own pattern anyway. A weight with fewer than
            n weights on that axis gets conformance `None` ("n/a"). Defaults
            to `None`.

    Returns:
        A `SparsityReport`.

    Raises:
        TypeError: `model` is not a Keras model or layer.
        ValueError: a bad `m_by_n`.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            "Argument `model` must be a Keras model or layer (pruned, stripped or plain). "
            f"Received: model of type {type(model).__name__}"
        )
    m_by_n = _check_m_by_n(m_by_n, "m_by_n")
    found = []
    _walk(model, found)
    rows = []
    for name, layer, wrapper in found:
        pattern = (wrapper.sparsity_m_by_n if wrapper is not None else None) or m_by_n
        labels = prune_registry.weight_labels(layer)
        for weight, axis in prune_registry.prunable_weights(layer):
            values = np.asarray(weight.numpy())
            zeros = int(np.count_nonzero(values == 0))
            row = {
                "layer": name,
                "weight": labels[id(weight)],
                "shape": list(values.shape),
                "size": int(values.size),
                "zeros": zeros,
                "sparsity": zeros / values.size if values.size else 0.0,
            }
            if pattern:
                row["m_by_n"] = list(pattern)
                whole_group = values.ndim > 0 and values.shape[axis] >= pattern[1]
                row["m_by_n_conformance"] = (
                    m_by_n_conformance(values, *pattern, axis) if whole_group else None
                )
            rows.append(row)
    return SparsityReport(rows)
