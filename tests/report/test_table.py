import pytest

from tfopt.report import format_bytes, render_table


def test_plain_table_aligns_numbers_right():
    text = render_table(["format", "bytes"], [["int8", 5224], ["float32", 195024]])
    lines = text.splitlines()
    assert lines[0].split() == ["format", "bytes"]
    assert lines[2].endswith("  5224") and lines[3].endswith("195024")
    assert set(lines[1]) == {"-", " "}


def test_markdown_table():
    text = render_table(["a", "b"], [["x", 1.23456], ["y", None]], markdown=True)
    # Numbers keep 4 significant digits, None shows as "-", numeric columns align right.
    assert text.splitlines() == [
        "| a |     b |",
        "|---|------:|",
        "| x | 1.235 |",
        "| y |     - |",
    ]


def test_row_length_is_checked():
    with pytest.raises(ValueError, match=r"row 0 has 1 values"):
        render_table(["a", "b"], [["only one"]])


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(2048) == "2.0 KiB"
    assert format_bytes(3 * 1024**2) == "3.0 MiB"
