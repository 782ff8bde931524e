"""Sensitivity analysis: the metric when each layer alone is quantized or pruned, ranked.

`quantization_sensitivity` and `pruning_sensitivity` return a `Sensitivity`:
per-layer rows ranked by how much the metric drops, a suggestion of layers to
leave in float (or dense) to stay within an accuracy budget, and the hooks into
`tfopt.quantization.quantize_apply` and `tfopt.pruning.prune_low_magnitude`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from tfopt.report import _compress
from tfopt.report._evaluation import Metric
from tfopt.report._figure import new_figure
from tfopt.report.table import render_table


class Sensitivity:
    """Per-layer sensitivity of a model to quantization or pruning, and what to leave alone.

    Made by `quantization_sensitivity` or `pruning_sensitivity`. `rows` are
    ranked, the biggest drop first (for pruning, the drop at the highest
    sparsity measured). A drop is how much worse the metric got than
    `baseline`, in the metric's own units (0.02 = two points of accuracy);
    negative when compressing the layer helped.

    Example:

    ```python
    sensitivity = tfopt.report.quantization_sensitivity(model, (x_test, y_test))
    print(sensitivity.table())
    leave = sensitivity.suggest(max_drop=0.01)       # layer names to keep in float
    qat = tfopt.quantization.quantize_apply(sensitivity.annotated_model(leave_float=leave))
    ```

    Attributes:
        kind: "quantization" or "pruning".
        metric: the metric's name ("accuracy" unless another was given).
        maximize: True when a larger metric is better.
        baseline: the metric of the uncompressed model on the data.
        settings: what each column of `metric`/`drop` in a row was measured at:
            the sparsities (pruning, ascending) or the config (quantization: its
            name and bits, e.g. "tflite w8a8").
        rows: one dict per layer (unit), ranked: `layer` (the name of its first
            layer), `class`, `layers` (every layer compressed with it: a conv
            with its folded BatchNormalization and fused ReLU), `weights`
            (prunable weights; pruning), `metric` and `drop` (lists, one per
            setting).
        skipped: layers not measured, each `{"layer": name, "reason": ...}`.
        suggestions: every `suggest` call's outcome (what `to_dict` reports):
            `max_drop`, `sparsity`, `leave`, `metric`, `drop`, `verified`.
    """

    def __init__(
        self,
        kind: str,
        metric: Metric,
        baseline: float,
        settings: Sequence,
        rows: list[dict],
        skipped: list[dict],
        measure: Callable,
        model=None,
        samples: int = 0,
    ):
        self.kind = kind
        self._metric = metric
        self.metric = metric.name
        self.maximize = metric.maximize
        self.baseline = float(baseline)
        self.settings = list(settings)
        self.rows = sorted(rows, key=lambda r: [-d for d in reversed(r["drop"])])
        self.skipped = list(skipped)
        self.suggestions: list[dict] = []
        self.samples = samples
        self._measure = measure
        self._model = model

    # ------------------------------------------------------------------ selection

    def _setting_index(self, sparsity) -> int:
        if self.kind == "quantization":
            if sparsity is not None:
                raise ValueError(
                    "Argument `sparsity` is for a pruning sensitivity; this one is about "
                    f"quantization. Received: sparsity={sparsity!r}"
                )
            return 0
        if sparsity is None:
            return len(self.settings) - 1
        for i, value in enumerate(self.settings):
            if math.isclose(value, sparsity, abs_tol=1e-9):
                return i
        raise ValueError(
            f"Argument `sparsity` must be one of the sparsities measured, {self.settings}. "
            f"Received: sparsity={sparsity!r}"
        )

    def _all_layer_names(self) -> set[str]:
        return {name for row in self.rows for name in row["layers"]}

    def measure(self, leave: Sequence[str] = (), sparsity: float | None = None) -> float:
        """The metric with every measured layer compressed except those in `leave`.

        Quantization: the layers not left are annotated and `quantize_apply`
        quantizes them (ranges calibrated as in the analysis). Pruning: each
        layer not left is magnitude-pruned to `sparsity`, no retraining.

        Args:
            leave: layer names to keep in float (dense). Defaults to `()`.
            sparsity: pruning only: one of `settings`. Defaults to `None` (the
                highest measured).

        Returns:
            The metric on the data the analysis was run on.

        Raises:
            ValueError: a name no measured layer has, or a sparsity not measured.
        """
        index = self._setting_index(sparsity)
        leave = _check_names(leave, self._all_layer_names(), "leave")
        return self._measure(leave, self.settings[index])

    def suggest(
        self, max_drop: float, sparsity: float | None = None, verify: bool = True
    ) -> list[str]:
        """Layers to leave in float (dense) so the whole model stays within `max_drop`.

        Greedy: layers are taken in rank order (most sensitive first) until the
        drops of the layers still compressed add up to at most `max_drop`. With
        `verify`, when that leaves any layer out, the model with every layer
        compressed is measured first on the analysis' data: within `max_drop`,
        nothing is left out (drops at the noise floor, a sample or two each,
        add up to more than the model loses). Otherwise the model with every
        other layer compressed is measured: while its drop is above
        `max_drop`, the next most sensitive layer is left out too; then each
        layer left out, least sensitive first, is compressed again if the
        model stays within `max_drop` (drops of several layers need not add
        up). Each step is one measured model. The result, with its measured
        metric, is recorded in `suggestions`. A greedy choice is not always
        the smallest set.

        Example:

        ```python
        sensitivity = tfopt.report.pruning_sensitivity(model, (x_test, y_test))
        leave = sensitivity.suggest(max_drop=0.01)     # within 1 point of accuracy
        ```

        Args:
            max_drop: the largest drop allowed, in the metric's units (0.01 =
                one point of accuracy). Must be >= 0.
            sparsity: pruning only: the sparsity the other layers will be
                pruned to, one of `settings`. Defaults to `None` (the highest
                measured).
            verify: measure the combined selection (one more model per step).
                Defaults to `True`.

        Returns:
            Layer names (every layer of a chosen unit: a conv with its folded
            BatchNormalization and fused ReLU), for `annotated_model(leave_float=...)`
            or `prune_low_magnitude(..., leave_dense=...)`.

        Raises:
            ValueError: a negative `max_drop`, or a sparsity not measured.
        """
        if (
            isinstance(max_drop, bool)
            or not isinstance(max_drop, numbers.Real)
            or not max_drop >= 0
        ):
            raise ValueError(
                "Argument `max_drop` must be a number >= 0 in the metric's units (0.01 = one "
                f"point of accuracy). Received: max_drop={max_drop!r}"
            )
        index = self._setting_index(sparsity)
        ranked = sorted(self.rows, key=lambda r: -r["drop"][index])
        count = 0
        while count < len(ranked) and (
            sum(max(r["drop"][index], 0.0) for r in ranked[count:]) > max_drop + 1e-12
        ):
            count += 1
        setting = self.settings[index]

        def names(chosen):
            return [name for row in chosen for name in row["layers"]]

        def within(value):
            return self._metric.worse_by(self.baseline, value) <= max_drop + 1e-12

        chosen, measured, drop = ranked[:count], None, None
        if verify and chosen:
            # Every layer compressed first: one model settles the common case of a
            # model that takes it (drops at the noise floor add up to more than
            # `max_drop` while the compressed model stays within it).
            everything = self._measure([], setting)
            if within(everything):
                chosen, measured = [], everything
        if verify and measured is None:
            measured = self._measure(names(chosen), setting)
            while not within(measured) and len(chosen) < len(ranked):
                chosen = ranked[: len(chosen) + 1]
                measured = self._measure(names(chosen), setting)
            # Then compress again each chosen layer, least sensitive first, that the
            # model can take within the budget (drops need not add up).
            # Leaving every layer out gives the baseline, so `measured` is within here.
            for row in reversed(list(chosen)):
                trial = [r for r in chosen if r is not row]
                value = self._measure(names(trial), setting)
                if within(value):
                    chosen, measured = trial, value
        leave = names(chosen)
        if measured is not None:
            drop = self._metric.worse_by(self.baseline, measured)
        self.suggestions.append(
            {
                "max_drop": float(max_drop),
                "sparsity": self.settings[index] if self.kind == "pruning" else None,
                "leave": leave,
                "metric": measured,
                "drop": drop,
                "verified": bool(verify),
            }
        )
        return leave

    def annotated_model(self, leave_float: Sequence[str] | None = None, max_drop=None):
        """The model with every measured layer annotated for QAT except those left in float.

        Pass it to `tfopt.quantization.quantize_apply`. Layers that only move
        values (max pooling, Flatten...) are not annotated: left as they are,
        they keep their input's grid, as QAT would.

        Example:

        ```python
        sensitivity = tfopt.report.quantization_sensitivity(model, (x_test, y_test))
        annotated = sensitivity.annotated_model(max_drop=0.01)
        qat = tfopt.quantization.quantize_apply(annotated)
        ```

        Args:
            leave_float: layer names to keep in float. Defaults to `None`: the
                suggestion for `max_drop`, or nothing when `max_drop` is None too.
            max_drop: run `suggest(max_drop)` to choose `leave_float`.
                Defaults to `None`.

        Returns:
            A clone of the model (weights copied) with `QuantizeAnnotate` layers.

        Raises:
            ValueError: a pruning sensitivity (use `prune_low_magnitude(...,
                leave_dense=suggest(...))`), both arguments given, a name no
                measured layer has, or nothing left to quantize.
        """
        if self.kind != "quantization":
            raise ValueError(
                "annotated_model() is for a quantization sensitivity. For pruning pass the "
                "suggestion to prune_low_magnitude: tfopt.pruning.prune_low_magnitude(model, "
                "schedule, leave_dense=sensitivity.suggest(max_drop))."
            )
        if leave_float is not None and max_drop is not None:
            raise ValueError(
                "Pass `leave_float` or `max_drop`, not both. "
                f"Received: leave_float={leave_float!r}, max_drop={max_drop!r}"
            )
        if max_drop is not None:
            leave_float = self.suggest(max_drop)
        leave = _check_names(leave_float or (), self._all_layer_names(), "leave_float")
        names = self._all_layer_names() - set(leave)
        if not names:
            raise ValueError(
                "Argument `leave_float` leaves every measured layer in float: nothing would be "
                "quantized. Use the float model as it is."
            )
        return _compress.annotated_clone(self._model, names)

    # ------------------------------------------------------------------ output

    def _setting_label(self, setting) -> str:
        return f"{setting:.0%}" if self.kind == "pruning" else str(setting)

    def to_dict(self) -> dict:
        """Everything but the model, JSON-able: kind, metric, baseline, rows, suggestions."""
        return {
            "kind": self.kind,
            "metric": self.metric,
            "maximize": self.maximize,
            "baseline": self.baseline,
            "samples": self.samples,
            "settings": list(self.settings),
            "layers": [
                {**row, "layers": list(row["layers"]), "rank": i + 1}
                for i, row in enumerate(self.rows)
            ],
            "skipped": [dict(s) for s in self.skipped],
            "suggestions": [dict(s, leave=list(s["leave"])) for s in self.suggestions],
        }

    def table(self) -> str:
        """The ranking as a plain-text table, under a line giving the baseline."""
        head = ["rank", "layer", "class"]
        if self.kind == "quantization":
            head += ["quantized with it", self.metric, "drop"]
        else:
            head += ["weights"] + [f"drop @{self._setting_label(s)}" for s in self.settings]
        lines = []
        for i, row in enumerate(self.rows):
            line = [i + 1, row["layer"], row["class"]]
            if self.kind == "quantization":
                line += [", ".join(row["layers"][1:]) or "-", row["metric"][0], row["drop"][0]]
            else:
                line += [row["weights"], *row["drop"]]
            lines.append(line)
        setting = "" if self.kind == "pruning" else f", config {self.settings[0]!r}"
        title = (
            f"{self.kind} sensitivity: baseline {self.metric} {self.baseline:.4g} on "
            f"{self.samples} samples{setting}; drop = how much worse with that layer alone "
            f"{'quantized' if self.kind == 'quantization' else 'pruned'}"
        )
        return title + "\n" + render_table(head, lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (
            f"<Sensitivity {self.kind}: {len(self.rows)} layers, baseline {self.metric}="
            f"{self.baseline:.4g}>"
        )

    def plot(self):
        """Bars of each layer's drop, most sensitive on top (one bar per sparsity for pruning).

        Returns:
            A `matplotlib.figure.Figure` with one Axes.
        """
        names = [row["layer"] for row in self.rows]
        figure, ax = new_figure(6.4, max(2.5, 0.4 * len(names) * len(self.settings) ** 0.5 + 1.2))
        positions = np.arange(len(names))
        height = 0.8 / len(self.settings)
        for j, setting in enumerate(self.settings):
            offset = (j - (len(self.settings) - 1) / 2) * height
            ax.barh(
                positions + offset,
                [row["drop"][j] for row in self.rows],
                height=height,
                label=f"pruned to {self._setting_label(setting)}"
                if self.kind == "pruning"
                else f"quantized ({setting})",
                gid=f"drop_{j}",
            )
        ax.axvline(0.0, color="black", linewidth=0.8)
        drops = [abs(d) for row in self.rows for d in row["drop"]]
        if not any(drops):  # no bar has a length: say so instead of an empty frame
            ax.set_xlim(-0.01, 0.01)
            ax.text(0.5, 0.5, f"no layer changes {self.metric}", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9, gid="no_drop")  # fmt: skip
        ax.set_yticks(positions, names)
        ax.invert_yaxis()
        ax.set_xlabel(f"{self.metric} drop from {self.baseline:.4g} (larger: more sensitive)")
        what = "quantized" if self.kind == "quantization" else "pruned"
        # Two lines: long layer names leave the axes too narrow for it on one.
        ax.set_title(f"{self.kind} sensitivity per layer\n(each layer alone {what})")
        ax.legend(loc="lower right", fontsize=8)
        return figure


def _check_names(names, known: set[str], argument: str) -> list[str]:
    if isinstance(names, str) or not isinstance(names, (list, tuple, set, frozenset)):
        raise ValueError(
            f"Argument `{argument}` must be a list of layer names. Received: {argument}={names!r}"
        )
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"Argument `{argument}` names layers the analysis did not measure: {unknown}. "
            f"Measured: {sorted(known)}"
        )
    return list(names)
