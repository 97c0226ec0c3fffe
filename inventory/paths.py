"""Inventory paths as vCenter spells them: ``/<datacenter>/vm/<folder>/.../<name>``.

vCenter escapes three characters in an entity's name so a name never holds the path separator:
``/`` is ``%2f``, ``\\`` is ``%5c`` and ``%`` is ``%25`` — except a ``%`` that already starts an
escape (``%`` and two hex digits), which it keeps (so escaping twice changes nothing). The ``name`` property it
returns is in that escaped form, and ``SearchIndex.FindByInventoryPath`` takes a path made of
escaped names: ``join_path`` of the names vCenter returned gives a path that finds the entity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ESCAPES = {"%2f": "/", "%5c": "\\", "%25": "%"}
# A '%' that starts no escape, or a character vCenter escapes.
_TO_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|[/\\]")
_ESCAPED = re.compile(r"%(?:2[fF]|5[cC]|25)")


def escape_name(name: str) -> str:
    """A name as vCenter stores it: ``backup/daily`` → ``backup%2fdaily``; an already escaped
    name is returned unchanged (``escape_name(escape_name(n)) == escape_name(n)``)."""
    if "%" not in name and "/" not in name and "\\" not in name:
        return name  # most names: nothing to escape, and 5,000 of them are joined per read
    return _TO_ESCAPE.sub(lambda m: {"%": "%25", "/": "%2f", "\\": "%5c"}[m.group()], name)


def unescape_name(name: str) -> str:
    """The name a person reads: ``backup%2fdaily`` → ``backup/daily`` (case-insensitive escapes)."""
    return _ESCAPED.sub(lambda m: _ESCAPES[m.group().lower()], name)


def join_path(parts: Iterable[str]) -> str:
    """``["dc", "vm", "a/b"]`` → ``/dc/vm/a%2fb``: each name escaped, joined under ``/``."""
    return "/" + "/".join(escape_name(part) for part in parts)


def split_path(path: str) -> list[str]:
    """``/dc/vm/a%2fb`` (leading and trailing ``/`` optional) → ``["dc", "vm", "a%2fb"]``:
    the escaped names, as ``join_path`` made them. Spaces are kept: a vCenter name may begin or
    end with one, and ``web01 `` is another VM than ``web01``."""
    return [part for part in path.split("/") if part]


def normalize_path(path: str) -> str:
    """A path typed by a person or a program, spelled as ``join_path`` spells it: leading ``/``
    added, empty parts dropped, each name escaped (a stray ``%`` becomes ``%25``)."""
    return join_path(split_path(path))


def visible(path: str) -> str:
    """``path`` as a message shows it: in double quotes when it begins or ends with whitespace,
    which a reader would not see otherwise (``"/dc/vm/prod/web01 "`` is not web01)."""
    return f'"{path}"' if path != path.strip() else path
