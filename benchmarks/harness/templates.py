"""Report prose kept out of the code: benchmarks/templates/<name>.md, filled in by name.

A template file holds named sections, each opened by a line of its own
``<!-- section: NAME -->``; text before the first one is a note to the reader and
is ignored. Within a section, blank lines separate paragraphs and the lines of a
paragraph are joined with one space, except that a line starting with "- " opens a
new line (a list item): prose can be wrapped in the file and still render as one
line per paragraph or item. Placeholders are `string.Template` ones, ``$name`` or
``${name}`` (``$$`` is a dollar sign); numbers arrive formatted by the caller.

Example:

```python
PROSE = Prose("distillation")
PROSE("quick", recipe="plain", temperature="2", alpha="0.5")
```
"""

from __future__ import annotations

import re
import string
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"
_SECTION = re.compile(r"^<!-- section: (\w+) -->[ \t]*$", re.MULTILINE)


class Prose:
    """The sections of one template file; the file is read on first use.

    Args:
        name: the file's name without ".md".
        directory: where the file is. Defaults to `TEMPLATE_DIR` (benchmarks/templates).
    """

    def __init__(self, name: str, directory: Path | None = None):
        self.path = Path(directory or TEMPLATE_DIR) / f"{name}.md"
        self._sections: dict[str, str] | None = None

    def sections(self) -> dict[str, str]:
        """{section name: its text, paragraphs joined}, in file order.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: the file has no section, or a section name twice.
        """
        if self._sections is None:
            if not self.path.is_file():
                found = ", ".join(sorted(p.stem for p in self.path.parent.glob("*.md")))
                raise FileNotFoundError(
                    f"No template file {self.path}. Template files found: {found or 'none'}."
                )
            parts = _SECTION.split(self.path.read_text(encoding="utf-8"))
            names = parts[1::2]
            if not names:
                raise ValueError(
                    f"Template file {self.path} has no sections: open each with a line "
                    "`<!-- section: NAME -->`."
                )
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"Template file {self.path} repeats sections: {twice}.")
            self._sections = {n: _join_lines(body) for n, body in zip(names, parts[2::2])}
        return self._sections

    def placeholders(self, section: str) -> set[str]:
        """The names of the placeholders of `section`."""
        return _placeholders(self._template(section), self._where(section))

    def __call__(self, section: str, /, **values) -> str:
        """The text of `section` with its placeholders replaced by `values` (as `str()`).

        Raises:
            ValueError: a placeholder has no value, a value has no placeholder, or the
                section has an invalid ``$``.
            KeyError: the file has no section `section`.
        """
        template = string.Template(self._template(section))
        wanted = _placeholders(template.template, self._where(section))
        missing, unused = sorted(wanted - values.keys()), sorted(values.keys() - wanted)
        if missing or unused:
            raise ValueError(
                f"{self._where(section)} has placeholders {sorted(wanted)}. Received values "
                f"for {sorted(values)}"
                + (f"; missing: {missing}" if missing else "")
                + (f"; without a placeholder: {unused}" if unused else "")
                + "."
            )
        return template.substitute(values)

    def _template(self, section: str) -> str:
        sections = self.sections()
        if section not in sections:
            raise KeyError(
                f"Template file {self.path} has no section {section!r}. "
                f"Sections: {', '.join(sections)}."
            )
        return sections[section]

    def _where(self, section: str) -> str:
        return f"Section {section!r} of {self.path}"


def _join_lines(body: str) -> str:
    """Paragraphs (split at blank lines) with their lines joined; "- " lines kept apart."""
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", body.strip()):
        lines: list[str] = []
        for line in block.splitlines():
            line = line.strip()
            if lines and not line.startswith("- "):
                lines[-1] += " " + line
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _placeholders(text: str, where: str) -> set[str]:
    names = set()
    for match in string.Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            start = match.start()
            raise ValueError(
                f"{where}: invalid placeholder at {text[start : start + 20]!r} "
                "(write $name or ${name}; $$ for a dollar sign)."
            )
        names.add(match.group("named") or match.group("braced"))
    names.discard(None)
    return names
