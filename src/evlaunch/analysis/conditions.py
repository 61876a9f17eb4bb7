"""Conditions over per-draw outputs, e.g. `BAIC.npv < -1e9 and launch_month > 14`, parsed without eval.

Users write a condition to say which draws they care about (for scenario discovery or filtering).
The grammar is deliberately tiny, so nothing a user types can execute code:

    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := NAME OP NUMBER
    OP         := "<" | "<=" | ">" | ">=" | "==" | "!="
    NAME       := [A-Za-z_][A-Za-z0-9_.]*   (but not and / or / not / inf / nan)
    NUMBER     := [+-]? (digits [. digits] | . digits) [(e|E) [+-] digits]  |  [+-]? inf

`not` binds tightest, then `and`, then `or`. Keywords are lower case. Comparisons follow IEEE rules:
a NaN draw satisfies only `!=`; `inf` lets one write `launch_month == inf` for "never launched".
Parentheses and `not` may nest at most `MAX_DEPTH` levels.

`parse_condition` turns text into an immutable tree (`Comparison`, `AllOf`, `AnyOf`, `Negation`);
`evaluate` turns a tree plus `dict[str, ndarray[N]]` into a boolean mask of N draws. Every problem
(syntax, unknown name, shape) raises `ConditionError` with a message saying where and what to change.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np

from evlaunch.errors import EvlaunchError

MAX_DEPTH = 50
OPERATORS = ("<", "<=", ">", ">=", "==", "!=")
KEYWORDS = frozenset({"and", "or", "not"})
RESERVED = KEYWORDS | {"inf", "nan"}


class ConditionError(EvlaunchError):
    """A condition string is malformed or refers to outputs that do not exist."""


# ----------------------------------------------------------------------------------------------
# the tree


@dataclass(frozen=True)
class Comparison:
    """`name op value`: one per-draw output compared with a number."""

    name: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.value!r}"


@dataclass(frozen=True)
class AllOf:
    """All operands hold (`and`); n-ary so long chains do not nest deeply."""

    operands: tuple[Condition, ...]

    def __str__(self) -> str:
        return " and ".join(f"({op})" for op in self.operands)


@dataclass(frozen=True)
class AnyOf:
    """At least one operand holds (`or`)."""

    operands: tuple[Condition, ...]

    def __str__(self) -> str:
        return " or ".join(f"({op})" for op in self.operands)


@dataclass(frozen=True)
class Negation:
    """The operand does not hold (`not`)."""

    operand: Condition

    def __str__(self) -> str:
        return f"not ({self.operand})"


Condition = Comparison | AllOf | AnyOf | Negation


def names_in(condition: Condition) -> set[str]:
    """The output names a condition refers to."""
    if isinstance(condition, Comparison):
        return {condition.name}
    if isinstance(condition, Negation):
        return names_in(condition.operand)
    return set().union(*(names_in(op) for op in condition.operands))


# ----------------------------------------------------------------------------------------------
# tokens

_NUMBER = r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf\b)"
_TOKEN = re.compile(
    rf"(?P<number>{_NUMBER})|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<op><=|>=|==|!=|<|>)|(?P<paren>[()])",
    re.ASCII,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "keyword", "op", "paren", "end"
    text: str
    pos: int


def _error(text: str, pos: int, message: str) -> ConditionError:
    shown = "".join(" " if c.isspace() else c for c in text)  # keep the caret aligned
    caret = " " * pos + "^"
    return ConditionError(f"{message} at position {pos}:\n  {shown}\n  {caret}")


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(text, pos, f"unexpected character {text[pos]!r}; a condition uses names, numbers, "
                                    "< <= > >= == !=, and/or/not and parentheses")
        kind = cast(str, match.lastgroup)  # every alternative of _TOKEN is a named group
        word = match.group()
        if kind == "name" and word in KEYWORDS:
            kind = "keyword"
        elif kind == "name" and word == "nan":
            raise _error(text, pos, "'nan' cannot be compared (no draw equals NaN); for draws that never "
                                    "launched write 'launch_month == inf'")
        tokens.append(_Token(kind, word, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# ----------------------------------------------------------------------------------------------
# parser (recursive descent with a depth limit)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenise(text)
        self.i = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.i]

    def _describe(self, token: _Token) -> str:
        return "the end of the condition" if token.kind == "end" else repr(token.text)

    def fail(self, expected: str) -> ConditionError:
        token = self.current
        return _error(self.text, token.pos, f"expected {expected} but found {self._describe(token)}")

    def take_keyword(self, word: str) -> bool:
        if self.current.kind == "keyword" and self.current.text == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Condition:
        tree = self.or_expr(0)
        if self.current.kind == "paren" and self.current.text == ")":
            raise _error(self.text, self.current.pos, "unmatched ')'; remove it or add a '(' before it")
        if self.current.kind != "end":
            raise self.fail("'and', 'or' or the end of the condition")
        return tree

    def or_expr(self, depth: int) -> Condition:
        operands = [self.and_expr(depth)]
        while self.take_keyword("or"):
            operands.append(self.and_expr(depth))
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def and_expr(self, depth: int) -> Condition:
        operands = [self.not_expr(depth)]
        while self.take_keyword("and"):
            operands.append(self.not_expr(depth))
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def not_expr(self, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            raise _error(self.text, self.current.pos,
                         f"nesting deeper than {MAX_DEPTH} levels of parentheses/'not'; simplify the condition")
        if self.take_keyword("not"):
            return Negation(self.not_expr(depth + 1))
        token = self.current
        if token.kind == "paren" and token.text == "(":
            self.i += 1
            inner = self.or_expr(depth + 1)
            if not (self.current.kind == "paren" and self.current.text == ")"):
                raise self.fail(f"')' to close the '(' at position {token.pos}")
            self.i += 1
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        name = self.current
        if name.kind != "name":
            raise self.fail("an output name (e.g. npv), 'not' or '('")
        if name.text in RESERVED:
            raise _error(self.text, name.pos, f"{name.text!r} is reserved and cannot be an output name")
        self.i += 1
        op = self.current
        if op.kind != "op":
            raise self.fail(f"a comparison operator ({' '.join(OPERATORS)}) after {name.text!r}")
        self.i += 1
        number = self.current
        if number.kind != "number":
            raise self.fail(f"a number after '{op.text}' (conditions compare an output with a number)")
        self.i += 1
        return Comparison(name.text, op.text, float(number.text))


def parse_condition(text: str) -> Condition:
    """Parse a condition string into a tree; raise ConditionError (with the position) if malformed."""
    if not isinstance(text, str):
        raise ConditionError(f"a condition must be text, got {type(text).__name__}")
    if not text.strip():
        raise ConditionError("the condition is empty; write e.g. 'npv < 0'")
    return _Parser(text).parse()


# ----------------------------------------------------------------------------------------------
# evaluation

_COMPARE = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def _unknown(name: str, available: Mapping[str, np.ndarray]) -> ConditionError:
    close = difflib.get_close_matches(name, list(available), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(sorted(available)) or "(none)"
    return ConditionError(f"unknown output name {name!r} in the condition.{hint} Available names: {listing}")


def _column(name: str, data: Mapping[str, np.ndarray]) -> np.ndarray:
    if name not in data:
        raise _unknown(name, data)
    try:
        values = np.asarray(data[name], dtype=float)
    except (TypeError, ValueError) as exc:
        raise ConditionError(f"output {name!r} is not numeric and cannot be compared with a number") from exc
    if values.ndim != 1:
        raise ConditionError(f"output {name!r} has shape {values.shape}; a condition needs one value per draw "
                             "(1-D) — select a single column (e.g. one year) under its own name")
    return values


def evaluate(condition: Condition | str, data: Mapping[str, np.ndarray]) -> np.ndarray:
    """Boolean mask over draws where `condition` holds; `data` maps output names to 1-D per-draw arrays.

    Accepts a parsed tree or the text (parsed first). All referenced outputs must exist and have the
    same number of draws.
    """
    tree = parse_condition(condition) if isinstance(condition, str) else condition
    names = names_in(tree)
    columns = {name: _column(name, data) for name in sorted(names)}
    sizes = {name: col.size for name, col in columns.items()}
    if len(set(sizes.values())) > 1:
        raise ConditionError(f"outputs in the condition have different numbers of draws: {sizes}; "
                             "compare outputs from the same run")
    return _evaluate(tree, columns)


def _evaluate(node: Condition, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    if isinstance(node, Comparison):
        with np.errstate(invalid="ignore"):
            return _COMPARE[node.op](columns[node.name], node.value)
    if isinstance(node, Negation):
        return ~_evaluate(node.operand, columns)
    parts = [_evaluate(op, columns) for op in node.operands]
    combine = np.logical_and if isinstance(node, AllOf) else np.logical_or
    return combine.reduce(parts, axis=0)
