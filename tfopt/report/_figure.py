"""A matplotlib Figure made with the object-oriented API, matplotlib imported lazily.

No pyplot: nothing pops up, no global figure state is kept between calls, and
`import tfopt.report` does not import matplotlib. A figure made without pyplot
has no picture for Jupyter unless pyplot's inline backend was switched on, so
the figures here render themselves as PNG (`_repr_png_`): a plot returned as a
notebook cell's value shows as an image with or without `%matplotlib inline`.
"""

from __future__ import annotations

import io

_FIGURE_CLASS = None


def _figure_class():
    global _FIGURE_CLASS
    if _FIGURE_CLASS is None:
        try:
            from matplotlib.figure import Figure
        except ImportError as err:  # installed with tfopt; a trimmed environment may lack it
            raise ImportError(
                "tfopt.report's plots need matplotlib, which is not installed. "
                "Install it with `pip install matplotlib` (tfopt's own install brings it)."
            ) from err

        class ReportFigure(Figure):
            """A `matplotlib.figure.Figure` that shows itself as a PNG in notebooks."""

            def _repr_png_(self) -> bytes:
                buffer = io.BytesIO()
                self.savefig(buffer, format="png", dpi=100)
                return buffer.getvalue()

        _FIGURE_CLASS = ReportFigure
    return _FIGURE_CLASS


def new_figure(width: float = 6.4, height: float = 4.4):
    """A `matplotlib.figure.Figure` with one Axes: returns `(figure, axes)`."""
    figure = _figure_class()(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()
