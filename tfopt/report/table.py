"""Plain-text and Markdown tables (no third-party dependency)."""

from __future__ import annotations

from collections.abc import Sequence


def format_bytes(n: int) -> str:
    """12345 -> '12.1 KiB'; sizes under 1 KiB stay in bytes."""
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024.0
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence], markdown: bool = False) -> str:
    """Renders rows as an aligned plain-text table, or as a Markdown table.

    Example:

    ```python
    print(render_table(["format", "bytes"], [["int8", 5224], ["float32", 8280]]))
    ```

    Args:
        headers: column titles.
        rows: one sequence of values per row, as long as `headers`. Floats are
            shown with 4 significant digits, None as "-".
        markdown: emit a GitHub-flavoured Markdown table. Defaults to `False`.

    Returns:
        The table as a string (no trailing newline).

    Raises:
        ValueError: a row whose length differs from `headers`.
    """
    cells = [[_cell(v) for v in row] for row in rows]
    for i, row in enumerate(cells):
        if len(row) != len(headers):
            raise ValueError(
                f"Argument `rows`: row {i} has {len(row)} values, `headers` has {len(headers)}."
            )
    numeric = [
        all(_is_number(r[j]) for r in rows if r[j] is not None) and any(rows)
        for j in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[j]) for r in cells]) for j, h in enumerate(headers)]

    def line(values):
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts).rstrip()

    out = [line(list(headers))]
    if markdown:
        out.append(
            "|"
            + "|".join(
                ("-" * (w + 1) + ":") if n else ("-" * (w + 2)) for w, n in zip(widths, numeric)
            )
            + "|"
        )
    else:
        out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
