"""Plots of the trade-offs: the Pareto view, sparsity schedules, per-layer sparsity.

Each function returns a `matplotlib.figure.Figure` made with the object-oriented
API (no pyplot): save it with `figure.savefig("plot.png")`, or show it in a
notebook as a cell's value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from tfopt.report._figure import new_figure

# x="..." -> (artifact key, axis label, factor from the key's unit to the axis unit).
_PARETO_AXES = {
    "size": ("size_bytes", "file size (KiB)", 1 / 1024),
    "gzip_size": ("gzip_bytes", "file size (KiB, gzipped)", 1 / 1024),
    "latency": ("latency_ms", "latency (ms)", 1.0),
}


def _field(artifact, key: str):
    if isinstance(artifact, Mapping):
        return artifact.get(key)
    return getattr(artifact, key, None)


def _artifact_name(artifact, index: int) -> str:
    name = _field(artifact, "name")
    return f"artifact {index}" if name is None else f"artifact {index} ({name!r})"


def _number(artifact, index: int, key: str, positive: bool) -> float:
    value = _field(artifact, key)
    if value is None:
        raise ValueError(
            f"Argument `artifacts`: {_artifact_name(artifact, index)} has no `{key}`. "
            "Each artifact needs `name`, the metric, and the value plotted on x "
            "(`size_bytes`, `gzip_bytes` or `latency_ms`)."
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(
            f"Argument `artifacts`: {_artifact_name(artifact, index)} has a `{key}` that is "
            f"not a finite number. Received: {key}={value!r}"
        )
    if positive and value <= 0:
        raise ValueError(
            f"Argument `artifacts`: {_artifact_name(artifact, index)} must have `{key}` > 0. "
            f"Received: {key}={value!r}"
        )
    return float(value)


def pareto_front(xs: Sequence[float], ys: Sequence[float], maximize: bool = True) -> list[int]:
    """Indices of the Pareto-optimal points: no other point is as small on x and better on y.

    Example:

    ```python
    tfopt.report.pareto_front([1.0, 2.0, 3.0], [0.9, 0.8, 0.95])   # [0, 2]
    ```

    Args:
        xs: costs (size, latency); smaller is better.
        ys: the metric, as long as `xs`.
        maximize: a larger `ys` is better (accuracy); `False` for an error or
            loss. Defaults to `True`.

    Returns:
        The indices of the front, by increasing x (ties on x keep the best y).
    """
    sign = 1.0 if maximize else -1.0
    order = sorted(range(len(xs)), key=lambda i: (xs[i], -sign * ys[i]))
    front, best = [], -math.inf
    for i in order:
        if sign * ys[i] > best:
            front.append(i)
            best = sign * ys[i]
    return front


def plot_pareto(
    artifacts: Sequence,
    x: str = "size",
    metric: str = "accuracy",
    maximize: bool = True,
):
    """Plots the metric of each artifact against its size or latency, with the Pareto front.

    Each artifact is a point labelled with its name. The Pareto front (the best
    metric reachable at each size or latency) is drawn as a step line through
    the artifacts on it: below and to the right of it, an artifact is beaten by
    one that is smaller (or faster) and at least as good. With `x="size"` an
    artifact that also has `gzip_bytes` gets a second, hollow marker at its
    gzipped size, joined to the raw one by a thin line; the front is computed on
    the raw size.

    Example:

    ```python
    figure = tfopt.report.plot_pareto([
        {"name": "float32", "accuracy": 0.978, "size_bytes": 195024, "gzip_bytes": 178104},
        {"name": "int8", "accuracy": 0.975, "size_bytes": 57496, "gzip_bytes": 48847},
    ])
    figure.savefig("pareto.png")
    ```

    Args:
        artifacts: a non-empty list of dicts (or objects with these attributes):
            `name` (str), the metric (float, the key named by `metric`),
            `size_bytes` (int), and optionally `gzip_bytes` (int) and
            `latency_ms` (float; with `x="latency"`, an artifact whose
            `latency_ms` is None, such as a `.keras` row of report.json, is
            left out).
        x: what goes on the x axis: "size" (raw file size, KiB), "gzip_size"
            (gzipped size, KiB) or "latency" (ms). Defaults to `"size"`.
        metric: the key of the metric on the y axis. Defaults to `"accuracy"`.
        maximize: a larger metric is better; `False` for an error or a loss.
            Defaults to `True`.

    Returns:
        A `matplotlib.figure.Figure` with one Axes.

    Raises:
        ValueError: an unknown `x`, an empty `artifacts` (or none with a
            latency, for `x="latency"`), or an artifact without the metric or the
            value plotted on x (the message names the artifact and the key).
        TypeError: `artifacts` is not a list of dicts or objects.
    """
    if x not in _PARETO_AXES:
        raise ValueError(f"Argument `x` must be one of {sorted(_PARETO_AXES)}. Received: x={x!r}")
    if isinstance(artifacts, (str, bytes, Mapping)) or not isinstance(artifacts, Sequence):
        raise TypeError(
            "Argument `artifacts` must be a list of dicts (or objects) with `name`, the metric "
            f"and `size_bytes`. Received: artifacts of type {type(artifacts).__name__}"
        )
    if not artifacts:
        raise ValueError(
            "Argument `artifacts` is empty: give at least one artifact, e.g. "
            '[{"name": "int8", "accuracy": 0.97, "size_bytes": 57496}].'
        )
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"Argument `metric` must be a key name. Received: metric={metric!r}")
    key, label, scale = _PARETO_AXES[x]
    names, xs, ys, gz = [], [], [], []
    for i, artifact in enumerate(artifacts):
        name = _field(artifact, "name")
        if x == "latency" and _field(artifact, key) is None:
            continue  # no latency (a .keras model in report.json): not drawn on this axis
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"Argument `artifacts`: artifact {i} needs a `name` (a non-empty str). "
                f"Received: name={name!r}"
            )
        names.append(name)
        ys.append(_number(artifact, i, metric, positive=False))
        xs.append(_number(artifact, i, key, positive=True) * scale)
        has_gzip = x == "size" and _field(artifact, "gzip_bytes") is not None
        gz.append(_number(artifact, i, "gzip_bytes", positive=True) * scale if has_gzip else None)
    if not names:
        raise ValueError(
            "Argument `artifacts`: no artifact has a `latency_ms` to plot with x='latency' "
            "(only files are timed; .keras models are not)."
        )

    figure, ax = new_figure()
    ax.scatter(xs, ys, color="tab:blue", zorder=3, label="raw size" if x == "size" else None)
    if any(g is not None for g in gz):
        pairs = [(g, y) for g, y in zip(gz, ys) if g is not None]
        ax.scatter(
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            facecolors="none",
            edgecolors="tab:blue",
            zorder=3,
            label="gzipped size",
        )
        for raw, g, y in zip(xs, gz, ys):
            if g is not None:
                ax.plot([g, raw], [y, y], color="tab:blue", linewidth=0.5, alpha=0.4)
    _label_points(ax, names, xs, ys)
    front = pareto_front(xs, ys, maximize=maximize)
    fx, fy = [xs[i] for i in front], [ys[i] for i in front]
    right = max(xs + [g for g in gz if g is not None])
    if right > fx[-1]:  # the last step reaches the right edge of the data
        fx, fy = [*fx, right], [*fy, fy[-1]]
    ax.plot(
        fx,
        fy,
        drawstyle="steps-post",
        color="tab:orange",
        linewidth=1.5,
        label="Pareto front" + (" (raw size)" if any(g is not None for g in gz) else ""),
        gid="pareto_front",
    )
    ax.margins(x=0.12, y=0.12)  # room for the names next to the points
    ax.set_xlabel(label)
    ax.set_ylabel(metric + ("" if maximize else " (lower is better)"))
    ax.set_title(f"{metric} against {label.split(' (')[0]}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure


def _schedule_values(schedule, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(should_prune, sparsity) of `schedule` at each step, vectorized when it allows."""
    try:
        prune, sparsity = schedule(np.asarray(steps, np.int64))
        prune = np.broadcast_to(np.asarray(prune, bool), steps.shape)
        sparsity = np.broadcast_to(np.asarray(sparsity, np.float64), steps.shape)
        return prune.copy(), sparsity.copy()
    except Exception:  # a schedule of the user's that takes only a scalar step
        pairs = [schedule(int(s)) for s in steps]
        return (
            np.array([bool(np.asarray(p)) for p, _ in pairs]),
            np.array([float(np.asarray(s)) for _, s in pairs]),
        )


def _check_step(name: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"Argument `{name}` must be an int >= 0. Received: {name}={value!r}")
    return int(value)


def plot_sparsity_schedule(
    schedule,
    begin_step: int | None = None,
    end_step: int | None = None,
    steps: int | None = None,
):
    """Plots the sparsity a pruning schedule asks for, step by step, and when masks update.

    Two lines: the schedule's target sparsity at every step (dashed), and the
    sparsity the weights actually have (a step line: 0 until the first mask
    update, then the target of the latest update, held until the next one).
    The mask updates (`should_prune` is true) are marked with dots.

    Example:

    ```python
    schedule = tfopt.pruning.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=200, frequency=20)
    figure = tfopt.report.plot_sparsity_schedule(schedule, steps=250)
    ```

    Args:
        schedule: a `tfopt.pruning.PruningSchedule` (`ConstantSparsity`,
            `PolynomialDecay` or your own), or a tfmot one.
        begin_step: first step plotted. Defaults to `None` (0).
        end_step: last step plotted. Defaults to `None`: the later of `steps`
            and the schedule's end (its `end_step` plus one `frequency`; for a
            schedule that prunes forever, `begin_step + 10 * frequency`).
        steps: the number of training steps of the run (epochs x steps per
            epoch). A vertical line marks where training stops, so a schedule
            that would reach its final sparsity later shows it. Defaults to
            `None` (no line).

    Returns:
        A `matplotlib.figure.Figure` with one Axes.

    Raises:
        TypeError: `schedule` is not a pruning schedule.
        ValueError: a negative or non-integer step, or `end_step <= begin_step`.
    """
    from tfopt.pruning.pruning_schedule import as_schedule

    if schedule is None:
        raise TypeError(
            "Argument `schedule` must be a pruning schedule, e.g. "
            "tfopt.pruning.ConstantSparsity(0.5, begin_step=0). Received: schedule=None"
        )
    schedule = as_schedule(schedule)
    first = _check_step("begin_step", begin_step) or 0
    last = _check_step("end_step", end_step)
    total = _check_step("steps", steps)
    if last is None:
        config = schedule.get_config()
        frequency = int(config.get("frequency", 100))
        start = int(config.get("begin_step", 0))
        stop = int(config.get("end_step", -1))
        natural = stop + frequency if stop >= 0 else start + 10 * frequency
        last = max(natural, total or 0)
    if last <= first:
        raise ValueError(
            f"Argument `end_step` must be > begin_step={first}. Received: end_step={last!r}"
        )
    xs = np.arange(first, last + 1, dtype=np.int64)
    prune, target = _schedule_values(schedule, xs)
    # What the weights hold: the target at the latest mask update (0 before the first).
    effective = np.zeros_like(target)
    current = 0.0
    for i in range(len(xs)):
        if prune[i]:
            current = target[i]
        effective[i] = current

    figure, ax = new_figure()
    ax.plot(xs, target, linestyle="--", color="tab:gray", linewidth=1, label="target sparsity",
            gid="target")  # fmt: skip
    ax.plot(xs, effective, drawstyle="steps-post", color="tab:blue", label="weights' sparsity",
            gid="effective")  # fmt: skip
    ax.plot(xs[prune], target[prune], "o", color="tab:orange", markersize=4,
            label=f"mask updates ({int(prune.sum())})", gid="updates")  # fmt: skip
    if total is not None:
        ax.axvline(total, color="tab:red", linewidth=1, label=f"training ends (step {total})",
                   gid="training_end")  # fmt: skip
    ax.set_xlabel("training step (batches)")
    ax.set_ylabel("sparsity (fraction of weights at zero)")
    ax.set_ylim(-0.02, 1.0)
    ax.set_title(type(schedule).__name__)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure


def plot_layer_sparsity(model, m_by_n: tuple[int, int] | None = None):
    """Plots the sparsity of each prunable weight of a model as horizontal bars.

    One bar per layer (per layer and weight, e.g. `lstm/kernel`, when a layer has
    several prunable weights), in layer order, from `tfopt.pruning.sparsity_report`;
    a dashed line marks the whole model's sparsity. Works on a pruning model, a
    stripped one or a plain one.

    Example:

    ```python
    figure = tfopt.report.plot_layer_sparsity(pruned)
    ```

    Args:
        model: a Keras model or layer.
        m_by_n: passed to `sparsity_report` (conformance is not plotted).
            Defaults to `None`.

    Returns:
        A `matplotlib.figure.Figure` with one Axes.

    Raises:
        TypeError: `model` is not a Keras model or layer.
        ValueError: the model has no prunable weights.
    """
    from tfopt.pruning import sparsity_report

    report = sparsity_report(model, m_by_n=m_by_n)
    if not report.rows:
        raise ValueError(
            f"Argument `model`: {getattr(model, 'name', model)!r} has no prunable weights "
            "(Dense, Conv, Embedding, recurrent kernels...), so there is no sparsity to plot."
        )
    per_layer: dict[str, int] = {}
    for row in report.rows:
        per_layer[row["layer"]] = per_layer.get(row["layer"], 0) + 1
    labels = [
        f"{r['layer']}/{r['weight'].split('/')[-1]}" if per_layer[r["layer"]] > 1 else r["layer"]
        for r in report.rows
    ]
    values = [r["sparsity"] for r in report.rows]
    figure, ax = new_figure(6.4, max(2.5, 0.35 * len(labels) + 1.2))
    positions = np.arange(len(labels))
    ax.barh(positions, values, color="tab:blue", gid="sparsity")
    for pos, row in zip(positions, report.rows):
        ax.annotate(
            f"{row['sparsity']:.0%} of {row['size']:,}",
            (row["sparsity"], pos),
            textcoords="offset points",
            xytext=(3, 0),
            va="center",
            fontsize=7,
        )
    ax.axvline(report.total_sparsity, color="tab:orange", linestyle="--", linewidth=1,
               label=f"whole model {report.total_sparsity:.1%}", gid="total")  # fmt: skip
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()  # first layer on top
    ax.set_xlim(0.0, 1.15)
    ax.set_xlabel("sparsity (fraction of weights at zero)")
    ax.set_title(f"sparsity per layer: {getattr(model, 'name', '')}".rstrip(": "))
    # Below the axes: inside, it covered the last bar's label.
    figure.legend(loc="outside lower center", fontsize=8, frameon=False)
    return figure


def _label_points(ax, names, xs, ys) -> None:
    """Names each point; a label near an earlier one moves up a line, so none overlap."""
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    placed = []
    for name, px, py in zip(names, xs, ys):
        near = sum(
            1 for qx, qy in placed if abs(qx - px) / span_x < 0.15 and abs(qy - py) / span_y < 0.05
        )
        placed.append((px, py))
        ax.annotate(
            name, (px, py), textcoords="offset points", xytext=(5, 5 + 10 * near), fontsize=8
        )
