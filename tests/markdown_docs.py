"""Read the project's markdown as a code host renders it: fenced blocks (with the HTML comment
above each), heading anchors, and relative links. Used by tests/test_docs.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
# The comment that excuses a shell block from being run; its reason is required.
NOT_RUN = re.compile(r"^<!--\s*not run:(?P<reason>.*?)-->$")

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target); the target ends at the first space or ")".
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
_EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


@dataclass(frozen=True)
class Block:
    """One fenced block: its file, the line of its opening fence (1-based), its language (the
    info string's first word, "" when none) and text, and the comment on the line above it."""

    path: Path
    line: int
    language: str
    text: str
    comment: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.language in SHELL_LANGUAGES

    @property
    def not_run_reason(self) -> str | None:
        """The reason given by ``<!-- not run: reason -->`` above the block ("" if left empty),
        or None when there is no such comment."""
        match = NOT_RUN.match(self.comment)
        return match["reason"].strip() if match else None


def user_docs() -> list[Path]:
    """The pages whose commands are run: README.md and docs/*.md, but for the map of the code
    (docs/ARCHITECTURE.md, like docs/architecture/, shows code, not commands)."""
    pages = [page for page in sorted((ROOT / "docs").glob("*.md")) if page.name != "ARCHITECTURE.md"]
    return [ROOT / "README.md", *pages]


def all_docs() -> list[Path]:
    """Every page whose links must resolve: README.md and docs/**/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _split(path: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced blocks of a page, and its other lines (number, text)."""
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            prose.append((index + 1, lines[index]))
            index += 1
            continue
        fence = opening["fence"]
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        above = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        info = opening["info"].strip()
        blocks.append(
            Block(
                path,
                index + 1,
                info.split()[0] if info else "",
                "\n".join(lines[index + 1 : end]) + "\n",
                above,
            )
        )
        index = end + 1
    return blocks, prose


def fenced_blocks(path: Path) -> list[Block]:
    return _split(path)[0]


def heading_slug(text: str) -> str:
    """The anchor a code host (GitHub) gives a heading: markup and punctuation dropped,
    lowercased, spaces to dashes."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every #anchor the page has: its headings' (repeated ones numbered -1, -2, ...) and any
    explicit ``<a id="...">``."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _split(path)[1]:
        heading = _HEADING.match(line)
        if heading:
            slug = heading_slug(heading[2])
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
        found.update(_EXPLICIT_ANCHOR.findall(line))
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link that is not a URL: inline, image and reference-style
    links outside code blocks and code spans."""
    links = []
    for number, line in _split(path)[1]:
        line = _CODE_SPAN.sub("", line)
        targets = _INLINE_LINK.findall(line)
        definition = _REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append(definition[1])
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:, ...
                continue
            links.append((number, target))
    return links


def link_problem(page: Path, target: str, root: Path = ROOT) -> str | None:
    """Why ``target``, linked from ``page``, does not resolve inside ``root``; None when it does."""
    file_part, _, anchor = target.partition("#")
    destination = (page.parent / file_part).resolve() if file_part else page
    if not destination.exists():
        return f"{file_part}: no such file"
    if root not in (destination, *destination.parents):
        return f"{file_part}: outside the repository"
    if anchor:
        if destination.suffix != ".md":
            return f"#{anchor}: anchors are only checked in markdown pages"
        if anchor not in anchors(destination):
            return f"#{anchor}: no such heading in {destination.relative_to(root)}"
    return None
