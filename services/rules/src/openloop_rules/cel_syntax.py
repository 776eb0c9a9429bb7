"""A parser for the CEL that rule conditions are written in, keeping every node's position.

The ``cel`` package compiles and runs CEL but exposes neither its syntax tree nor a type
checker, so publishing a rule set could not tell a misspelt fact or a type error from a
good rule until some payment reached it. This module parses a condition into a small tree
that :mod:`openloop_rules.cel_check` type-checks against the declared facts and rewrites
for fast evaluation. It covers CEL's expression grammar (literals, lists, maps, member
access, indexing, calls, methods, unary and binary operators, the conditional and the
comprehension macros); message construction (``Type{field: ...}``) is not part of the rule
language. Syntax errors are found first by the ``cel`` package itself; this parser reports
the same kind of error with the offset where it stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class CelSyntaxError(ValueError):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Node:
    offset: int
    """Where the node starts in the condition text (characters from the start)."""


@dataclass(frozen=True, slots=True)
class Literal(Node):
    kind: str
    """``int``, ``uint``, ``double``, ``string``, ``bytes``, ``bool`` or ``null``."""
    text: str
    """The literal as written, re-emitted unchanged."""


@dataclass(frozen=True, slots=True)
class Ident(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Select(Node):
    operand: Node
    field: str


@dataclass(frozen=True, slots=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str
    target: Node | None
    """The receiver of a method call (``x.startsWith(y)``); None for a global call."""
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    condition: Node
    if_true: Node
    if_false: Node


@dataclass(frozen=True, slots=True)
class ListLiteral(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLiteral(Node):
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    offset: int


_STRING_BODY = (
    r'"""(?:\\.|[^\\])*?"""|' + r"'''(?:\\.|[^\\])*?'''|" + r'"(?:\\.|[^"\\\n])*"|'
    r"'(?:\\.|[^'\\\n])*'"
)
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<comment>//[^\n]*)"
    rf"|(?P<bytes>[bB][rR]?(?:{_STRING_BODY})|[rR][bB](?:{_STRING_BODY}))"
    rf"|(?P<string>[rR]?(?:{_STRING_BODY}))"
    r"|(?P<double>(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?))"
    r"|(?P<uint>(?:0[xX][0-9a-fA-F]+|\d+)[uU])"
    r"|(?P<int>0[xX][0-9a-fA-F]+|\d+)"
    r"|(?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])"
)
_KEYWORDS = {"true": "bool", "false": "bool", "null": "null"}
_RESERVED = frozenset(
    {
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let",
        "loop", "package", "namespace", "return", "var", "void", "while",
    }
)  # fmt: skip
_RELATIONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise CelSyntaxError(f"unexpected character {source[position]!r}", position)
        kind = match.lastgroup
        assert kind is not None
        text = match.group()
        if kind == "ident" and text in _KEYWORDS:
            kind = _KEYWORDS[text]
        elif kind == "ident" and text == "in":
            kind = "op"
        elif kind == "ident" and text in _RESERVED:
            raise CelSyntaxError(f"{text!r} is a reserved word", position)
        if kind not in ("space", "comment"):
            tokens.append(_Token(kind, text, position))
        position = match.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self._tokens = _tokens(source)
        self._at = 0

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _next(self) -> _Token:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _accept(self, text: str) -> _Token | None:
        token = self._peek()
        if token.kind == "op" and token.text == text:
            self._at += 1
            return token
        return None

    def _expect(self, text: str) -> _Token:
        token = self._accept(text)
        if token is None:
            found = self._peek()
            shown = found.text or "end of condition"
            raise CelSyntaxError(f"expected {text!r}, found {shown!r}", found.offset)
        return token

    def parse(self) -> Node:
        node = self._expression()
        end = self._peek()
        if end.kind != "end":
            raise CelSyntaxError(f"unexpected {end.text!r}", end.offset)
        return node

    def _expression(self) -> Node:
        condition = self._or()
        if self._accept("?") is None:
            return condition
        if_true = self._or()
        self._expect(":")
        if_false = self._expression()
        return Conditional(condition.offset, condition, if_true, if_false)

    def _or(self) -> Node:
        node = self._and()
        while (token := self._accept("||")) is not None:
            node = Binary(token.offset, "||", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._relation()
        while (token := self._accept("&&")) is not None:
            node = Binary(token.offset, "&&", node, self._relation())
        return node

    def _relation(self) -> Node:
        node = self._addition()
        while (token := self._peek()).kind == "op" and token.text in _RELATIONS:
            self._next()
            node = Binary(token.offset, token.text, node, self._addition())
        return node

    def _addition(self) -> Node:
        node = self._multiplication()
        while (token := self._peek()).kind == "op" and token.text in ("+", "-"):
            self._next()
            node = Binary(token.offset, token.text, node, self._multiplication())
        return node

    def _multiplication(self) -> Node:
        node = self._unary()
        while (token := self._peek()).kind == "op" and token.text in ("*", "/", "%"):
            self._next()
            node = Binary(token.offset, token.text, node, self._unary())
        return node

    def _unary(self) -> Node:
        token = self._peek()
        if token.kind == "op" and token.text in ("!", "-"):
            self._next()
            return Unary(token.offset, token.text, self._unary())
        return self._member()

    def _member(self) -> Node:
        node = self._primary()
        while True:
            if self._accept(".") is not None:
                name = self._next()
                if name.kind != "ident":
                    raise CelSyntaxError("expected a field or method name after '.'", name.offset)
                if self._accept("(") is not None:
                    node = Call(name.offset, name.text, node, self._arguments(")"))
                else:
                    node = Select(name.offset, node, name.text)
            elif (token := self._accept("[")) is not None:
                index = self._expression()
                self._expect("]")
                node = Index(token.offset, node, index)
            elif self._peek().kind == "op" and self._peek().text == "{":
                raise CelSyntaxError(
                    "message construction is not part of the rule language", self._peek().offset
                )
            else:
                return node

    def _arguments(self, close: str) -> tuple[Node, ...]:
        items: list[Node] = []
        if self._accept(close) is not None:
            return ()
        while True:
            items.append(self._expression())
            if self._accept(",") is None:
                self._expect(close)
                return tuple(items)
            if self._accept(close) is not None:
                return tuple(items)

    def _primary(self) -> Node:
        token = self._next()
        if token.kind in ("int", "uint", "double", "string", "bytes", "bool", "null"):
            return Literal(token.offset, token.kind, token.text)
        if token.kind == "ident":
            if self._accept("(") is not None:
                return Call(token.offset, token.text, None, self._arguments(")"))
            return Ident(token.offset, token.text)
        if token.kind == "op" and token.text == "(":
            node = self._expression()
            self._expect(")")
            return node
        if token.kind == "op" and token.text == "[":
            return ListLiteral(token.offset, self._arguments("]"))
        if token.kind == "op" and token.text == "{":
            return MapLiteral(token.offset, self._entries())
        if token.kind == "op" and token.text == ".":
            raise CelSyntaxError(
                "leading '.' names are not part of the rule language", token.offset
            )
        shown = token.text or "end of condition"
        raise CelSyntaxError(f"unexpected {shown!r}", token.offset)

    def _entries(self) -> tuple[tuple[Node, Node], ...]:
        entries: list[tuple[Node, Node]] = []
        if self._accept("}") is not None:
            return ()
        while True:
            key = self._expression()
            self._expect(":")
            entries.append((key, self._expression()))
            if self._accept(",") is None:
                self._expect("}")
                return tuple(entries)
            if self._accept("}") is not None:
                return tuple(entries)


def parse(source: str) -> Node:
    """The tree of ``source``, or :class:`CelSyntaxError` with the offset where it failed."""
    return _Parser(source).parse()


def line_and_column(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``source``."""
    before = source[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return line, column
