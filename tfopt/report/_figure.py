"""A matplotlib Figure made with the object-oriented API, matplotlib imported lazily.

No pyplot: nothing pops up, no global figure state is kept between calls, and
`import tfopt.report` does not import matplotlib.
"""

from __future__ import annotations


def new_figure(width: float = 6.4, height: float = 4.4):
    """A `matplotlib.figure.Figure` with one Axes: returns `(figure, axes)`."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # installed with tfopt; a trimmed environment may lack it
        raise ImportError(
            "tfopt.report's plots need matplotlib, which is not installed. "
            "Install it with `pip install matplotlib` (tfopt's own install brings it)."
        ) from err
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()
