"""benchmarks/harness/templates.py: the report prose files and how they are filled."""

import pytest

from benchmarks.harness.templates import TEMPLATE_DIR, Prose

TEMPLATE = """\
<!-- A note to the reader, ignored. -->

<!-- section: intro -->
Trained $epochs epochs
on ${samples} images, batch $batch.

Second paragraph, $$5 of text.

<!-- section: notes -->
- First item, wrapped
  over two lines.
- Second item: $value.
"""


@pytest.fixture
def prose(tmp_path):
    (tmp_path / "suite.md").write_text(TEMPLATE)
    return Prose("suite", tmp_path)


def test_fill_joins_wrapped_lines_and_keeps_paragraphs_and_items(prose):
    assert prose("intro", epochs=3, samples="1,438", batch=32) == (
        "Trained 3 epochs on 1,438 images, batch 32.\n\nSecond paragraph, $5 of text."
    )
    assert prose("notes", value=0.5) == (
        "- First item, wrapped over two lines.\n- Second item: 0.5."
    )
    assert list(prose.sections()) == ["intro", "notes"]
    assert prose.placeholders("intro") == {"epochs", "samples", "batch"}


def test_a_missing_placeholder_value_fails_by_name(prose):
    with pytest.raises(ValueError, match=r"missing: \['samples'\]") as info:
        prose("intro", epochs=3, batch=32)
    assert "Section 'intro' of" in str(info.value) and "suite.md" in str(info.value)


def test_a_value_without_placeholder_fails_by_name(prose):
    with pytest.raises(ValueError, match=r"without a placeholder: \['batchsize'\]"):
        prose("intro", epochs=3, samples=1, batch=32, batchsize=32)


def test_unknown_section_lists_the_sections(prose):
    with pytest.raises(KeyError, match="no section 'outro'.*Sections: intro, notes"):
        prose("outro")


def test_bad_files_fail_clearly(tmp_path):
    lazy = Prose("absent", tmp_path)  # nothing is read until first use
    with pytest.raises(FileNotFoundError, match="absent.md"):
        lazy.sections()
    (tmp_path / "plain.md").write_text("No sections at all.\n")
    with pytest.raises(ValueError, match="has no sections"):
        Prose("plain", tmp_path).sections()
    (tmp_path / "twice.md").write_text("<!-- section: a -->\nx\n<!-- section: a -->\ny\n")
    with pytest.raises(ValueError, match=r"repeats sections: \['a'\]"):
        Prose("twice", tmp_path).sections()
    (tmp_path / "dollar.md").write_text("<!-- section: a -->\nCosts $5.\n")
    with pytest.raises(ValueError, match=r"invalid placeholder at '\$5\.'"):
        Prose("dollar", tmp_path)("a")


def test_every_shipped_template_parses():
    files = sorted(TEMPLATE_DIR.glob("*.md"))
    assert files
    for path in files:
        prose = Prose(path.stem)
        for section in prose.sections():
            prose.placeholders(section)  # raises on an invalid $
