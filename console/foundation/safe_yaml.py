"""One YAML reader for both imports (.devports.yml, healthcheck.yml): hostile files cost nothing.

A YAML file is a program for PyYAML's constructor, so an uploaded file is refused at the cheapest
point that can see the problem:

- size, before anything is decoded;
- anchors (`&a`) and aliases (`*a`), as soon as the parser produces one, before any node that uses
  them is built: nine nested aliases of nine items turn 437 bytes into 9**9 objects, and walking
  them (a repr, a validation loop) stalled the whole console for 11 s;
- nesting deeper than `max_depth`, while composing: 10,000 `[` cost 47 s of CPU and ended in a
  RecursionError (a 500);
- `.inf`, `.nan` and numbers beyond +-2**53 (what JSON and the database columns hold exactly),
  `!!binary` and `!!set` (no JSON form) while constructing, each naming its line.

The text is parsed once: the node tree gives both the data and every path's line.
No Django here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

try:  # libyaml scans and parses about 4x faster; the composer stays ours, in Python
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_DEPTH = 20
LARGEST_NUMBER = 2**53  # beyond it a JSON number (a float) loses integer precision

Path = tuple  # ("services", "api", "checks", 0, "url")


class YamlRefused(ValueError):
    """The file is refused as a whole. `line` is 1-based, or None when no line is to blame."""

    def __init__(self, line: int | None, message: str, *, too_large: bool = False):
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message
        self.too_large = too_large  # callers answer 413 rather than 422


class Document(NamedTuple):
    data: object
    lines: dict[Path, int]  # path -> line of its value
    key_lines: dict[Path, int]  # path -> line of the mapping key that names it


def size_refusal(size: int, max_bytes: int = DEFAULT_MAX_BYTES) -> YamlRefused | None:
    """The refusal for a file of `size` bytes, so callers can refuse before reading an upload."""
    if size <= max_bytes:
        return None
    limit = f"{max_bytes // 1024} KiB" if max_bytes % 1024 == 0 else f"{max_bytes} bytes"
    return YamlRefused(None, f"the file is larger than {limit}", too_large=True)


def declared_size(content_length: str | None) -> int:
    """A request's Content-Length as bytes, so a body can be refused unread (0 when absent)."""
    text = (content_length or "").strip()
    return int(text) if text.isdigit() and len(text) < 20 else 0


def load(
    raw: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Document:
    """The data of one YAML document and the line of every path in it, or YamlRefused."""
    encoded = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if refusal := size_refusal(len(encoded), max_bytes):
        raise refusal
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise YamlRefused(None, "the file is not UTF-8 text") from None
    loader = _GuardedLoader(text, max_depth)
    try:
        root = loader.get_single_node()
        if root is None:
            return Document(None, {}, {})
        data = loader.construct_document(root)
        lines, key_lines = _lines_of(loader, root)
    except yaml.YAMLError as error:
        raise YamlRefused(*_where_and_why(error, text)) from None
    except RecursionError:  # not reachable below max_depth; kept so it can never be a 500
        raise YamlRefused(None, f"nested more than {max_depth} levels deep") from None
    finally:
        loader.dispose()
    return Document(data, lines, key_lines)


def _where_and_why(error: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return mark.line + 1, f"not valid YAML: {getattr(error, 'problem', None) or error}"
    position = getattr(error, "position", None)  # a ReaderError: a character YAML forbids
    line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
    return line, f"not valid YAML: {str(error).splitlines()[0]}"


def _line(node_or_event) -> int:
    return node_or_event.start_mark.line + 1


class _GuardedLoader(Composer, _Parser, SafeConstructor, Resolver):
    """SafeLoader's parts, with its composer (first in the MRO) watching every event."""

    def __init__(self, text: str, max_depth: int):
        _Parser.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._max_depth = max_depth
        self._depth = 0

    def compose_node(self, parent, index):
        # Looked at as an event, before PyYAML records an anchor or resolves an alias.
        event = self.peek_event()
        if isinstance(event, AliasEvent) or event.anchor is not None:
            raise YamlRefused(_line(event), "anchors and aliases (& and *) are not allowed")
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > self._max_depth:
            raise YamlRefused(_line(event), f"nested more than {self._max_depth} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node):
        try:
            value = super().construct_yaml_int(node)
        except ValueError:  # more digits than int() reads from text (4300)
            value = math.inf
        if abs(value) > LARGEST_NUMBER:
            raise YamlRefused(
                _line(node), f"{_excerpt(node)} is out of range (at most +-2**53, {LARGEST_NUMBER})"
            )
        return value

    def construct_yaml_float(self, node):
        value = super().construct_yaml_float(node)
        if math.isnan(value) or math.isinf(value):
            raise YamlRefused(_line(node), f"{_excerpt(node)} is not a finite number")
        if abs(value) > LARGEST_NUMBER:
            raise YamlRefused(
                _line(node), f"{_excerpt(node)} is out of range (at most +-2**53, {LARGEST_NUMBER})"
            )
        return value

    def construct_yaml_timestamp(self, node):
        # `when: 2024-01-01` stays the text it looks like: a datetime has no JSON form.
        return self.construct_scalar(node)

    def refuse_tag(self, node):
        raise YamlRefused(_line(node), f"{node.tag.rsplit(':', 1)[-1]} values are not allowed")


def _construct(tag: str, constructor: Callable[[_GuardedLoader, Node], object]) -> None:
    # types-PyYAML allows only PyYAML's own loader classes here; ours recombines SafeLoader's.
    _GuardedLoader.add_constructor(tag, constructor)  # type: ignore[type-var]


_construct("tag:yaml.org,2002:int", _GuardedLoader.construct_yaml_int)
_construct("tag:yaml.org,2002:float", _GuardedLoader.construct_yaml_float)
_construct("tag:yaml.org,2002:timestamp", _GuardedLoader.construct_yaml_timestamp)
for _tag in ("binary", "set", "omap", "pairs"):
    _construct(f"tag:yaml.org,2002:{_tag}", _GuardedLoader.refuse_tag)


def _excerpt(node) -> str:
    text = str(node.value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _lines_of(loader: _GuardedLoader, root) -> tuple[dict[Path, int], dict[Path, int]]:
    """Every path -> the line of its value, and of its key, walking the nodes already built.

    Path parts are the constructed keys (5000, not "5000"), as they appear in the data.
    """
    lines: dict[Path, int] = {}
    key_lines: dict[Path, int] = {}
    pending: list[tuple[yaml.Node, Path]] = [(root, ())]
    while pending:
        node, path = pending.pop()
        lines[path] = _line(node)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = _key_of(loader, key_node)
                key_lines[(*path, key)] = _line(key_node)
                pending.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, (*path, index)) for index, item in enumerate(node.value))
    return lines, key_lines


def _key_of(loader: _GuardedLoader, key_node: yaml.Node) -> object:
    if not isinstance(key_node, yaml.ScalarNode):
        return key_node.value  # a complex key: the data would have refused it as unhashable
    return loader.construct_object(key_node)
