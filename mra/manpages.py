"""mra(8), mda(8) and mra.toml(5), written from README.md: one source for the documentation.

    python -m mra.manpages DIRECTORY     writes mra.8, mda.8 and mra.toml.5 there

Each page is a list of README sections (`PAGES`), turned into man(7) roff by a small
Markdown reader that knows what the README uses: `#` headings, paragraphs, `-` lists,
fenced code blocks, tables, and `code`, **bold**, *emphasis* and [links](...) inline. The
README stays the one text to edit; `make man` (and the wheel's build) regenerate the pages,
and tests/unit/test_manpages.py checks that groff reads them without a warning and that
mra.toml(5) names every setting of mailstore/config.py.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mailstore import __version__

# page file -> (title, section, one-line description, README sections in order)
PAGES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "mra.8": (
        "MRA",
        "8",
        "POP3, IMAP and ManageSieve server for Maildir++ stores",
        (
            "mra: the POP3 and IMAP server",
            "SMTP AUTH: the MTA checks passwords with mra",
            "The mail store on disk",
            "User database",
        ),
    ),
    "mda.8": ("MDA", "8", "deliver mail into Maildir++ stores", ("mda: delivering mail",)),
    "mra.toml.5": (
        "MRA.TOML",
        "5",
        "configuration file of mra and mda",
        ("Configuration file",),
    ),
}
SEE_ALSO = {
    "mra.8": "mda(8), mra.toml(5), doveadm(1)",
    "mda.8": "mra(8), mra.toml(5), procmail(1), aliases(5)",
    "mra.toml.5": "mra(8), mda(8)",
}


def sections(markdown: str) -> dict[str, list[str]]:
    """The README's `##` sections by heading text, each with its lines (subsections in)."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    fence = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and line.startswith("## "):
            current = out.setdefault(line[3:].strip(), [])
            continue
        if current is not None:
            current.append(line)
    return out


def _escape(text: str) -> str:
    text = text.replace("\\", "\\e")
    # A line starting with . or ' would be a request.
    return re.sub(r"^([.'])", r"\\&\1", text)


def _inline(text: str) -> str:
    text = _escape(text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links: their text
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", text)
    text = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\\fI\1\\fR", text)
    text = text.replace("-", "\\-")
    return text


def to_roff(lines: list[str]) -> list[str]:
    out: list[str] = []
    paragraph: list[str] = []
    fence = False

    def flush() -> None:
        if paragraph:
            out.append(".PP")
            out.extend(_inline(p) for p in paragraph)
            paragraph.clear()

    for line in lines:
        if line.startswith("```"):
            flush()
            if not fence:
                out += [".PP", ".nf", ".RS 4"]
            else:
                out += [".RE", ".fi"]
            fence = not fence
            continue
        if fence:
            out.append(_escape(line) if line else "")
            continue
        stripped = line.strip()
        if not stripped or stripped == "---":
            flush()
            continue
        if line.startswith("### ") or line.startswith("#### "):
            flush()
            out.append(".SS " + _inline(line.lstrip("#").strip()))
            continue
        if line.startswith(("- ", "* ")) or re.match(r"^\d+\. ", line):
            flush()
            out += [".IP \\(bu 2", _inline(re.sub(r"^(?:[-*]|\d+\.) ", "", line))]
            continue
        if line.startswith("|"):
            flush()
            if re.fullmatch(r"\|[\s\-:|]+\|", stripped):
                continue
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            out += [".IP \\(bu 2", " \\(em ".join(_inline(c) for c in cells)]
            continue
        if line.startswith("  ") and out and out[-1] != ".PP" and not paragraph:
            out.append(_inline(stripped))  # a list item's continuation
            continue
        paragraph.append(stripped)
    flush()
    return out


def page(name: str, readme: str) -> str:
    title, section, what, wanted = PAGES[name]
    found = sections(readme)
    command = name.rsplit(".", 1)[0]
    lines = [
        f'.TH {title} {section} "" "mra-mda {__version__}" "mra-mda"',
        ".SH NAME",
        f"{_escape(command)} \\- {what}",
    ]
    for heading in wanted:
        body = found.get(heading)
        if body is None:
            raise KeyError(f"README.md has no section {heading!r}")
        lines.append(".SH " + _inline(heading.upper()))
        lines += to_roff(body)
    lines += [".SH SEE ALSO", SEE_ALSO[name]]
    return "\n".join(lines) + "\n"


def write_all(directory: Path, readme: Path) -> list[Path]:
    text = readme.read_text(encoding="utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in PAGES:
        path = directory / name
        path.write_text(page(name, text), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m mra.manpages DIRECTORY", file=sys.stderr)
        return 64
    readme = Path(__file__).resolve().parent.parent / "README.md"
    for path in write_all(Path(argv[0]), readme):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
