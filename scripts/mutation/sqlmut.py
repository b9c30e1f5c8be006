"""Mutants of a SQL view file: small, explainable changes, one at a time.

Each operator finds its sites in the code only (comments and string literals are masked first), and
a mutant is the file with one site changed. Operators (name: what it does):

  least-greatest   least( <-> greatest(
  min-max          min( <-> max(, arg_min( <-> arg_max(
  lt-le            < <-> <=
  gt-ge            > <-> >=
  eq-ne            = <-> <>
  and-or           and <-> or (not the `and` of `between ... and`)
  asc-desc         asc <-> desc, nulls last <-> nulls first
  del-condition    a line `and <condition>` deleted; `where <condition>` (one conjunct) made `where true`
  drop-filter      an aggregate's `filter (where ...)` deleted
  int-literal      an integer literal n -> n+1 and n-1
  coalesce-swap    coalesce(a, b, ...) -> coalesce(b, a, ...)
  drop-not         `not` deleted (`is not null` -> `is null`); `is null` -> `is not null`
  case-order       two adjacent `when ... then ...` branches of a case swapped
  left-join        left join -> join (rows without a match dropped)
  plus-minus       binary - <-> +
  drop-distinct    distinct deleted
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    operator: str
    line: int           # 1-based line of the change in the original file
    before: str         # the original line(s) touched
    after: str          # the mutated line(s)
    text: str           # the whole mutated file

    def diff(self) -> str:
        minus = "\n".join("- " + x for x in self.before.splitlines())
        plus = "\n".join("+ " + x for x in self.after.splitlines()) if self.after else "+ (line deleted)"
        return f"{minus}\n{plus}"


def mask(sql: str) -> str:
    """The SQL with every comment and string literal replaced by spaces of the same length, so
    that code-only regexes never match inside them and positions stay those of the original."""
    out = list(sql)
    i, n = 0, len(sql)
    while i < n:
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
        elif sql[i] == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and not sql.startswith("''", j):
                    break
                j += 2 if sql.startswith("''", j) else 1
            out[i + 1:j] = "_" * (j - i - 1)      # keep the quotes, hide the content
            i = j + 1
        else:
            i += 1
    return "".join(out)


def _line_of(sql: str, pos: int) -> int:
    return sql.count("\n", 0, pos) + 1


def _lines_span(sql: str, start: int, end: int) -> tuple[int, int]:
    """The span of whole lines covering [start, end)."""
    a = sql.rfind("\n", 0, start) + 1
    b = sql.find("\n", end)
    return a, (len(sql) if b < 0 else b)


def _replace(sql: str, op: str, start: int, end: int, new: str) -> Mutant:
    text = sql[:start] + new + sql[end:]
    a, b = _lines_span(sql, start, end)
    before = sql[a:b]
    after = text[a:b + len(new) - (end - start)]
    return Mutant(op, _line_of(sql, start), before, after, text)


def _match_paren(masked: str, open_pos: int) -> int:
    """Position of the parenthesis closing the one at open_pos (-1 if none)."""
    depth = 0
    for i in range(open_pos, len(masked)):
        if masked[i] == "(":
            depth += 1
        elif masked[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_top(masked: str, start: int, end: int, sep: str = ",") -> list[tuple[int, int]]:
    """Spans of the top-level (depth 0) parts of masked[start:end] separated by sep."""
    parts, depth, a = [], 0, start
    for i in range(start, end):
        c = masked[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append((a, i))
            a = i + 1
    parts.append((a, end))
    return parts


SWAPS = [
    ("least-greatest", r"\bleast(?=\()", "greatest"), ("least-greatest", r"\bgreatest(?=\()", "least"),
    ("min-max", r"\bmin(?=\()", "max"), ("min-max", r"\bmax(?=\()", "min"),
    ("min-max", r"\barg_min(?=\()", "arg_max"), ("min-max", r"\barg_max(?=\()", "arg_min"),
    ("lt-le", r"(?<![<>!:=])<(?![=>])", "<="), ("lt-le", r"<=", "<"),
    ("gt-ge", r"(?<![<>=\-])>(?!=)", ">="), ("gt-ge", r">=", ">"),
    ("eq-ne", r"(?<![<>!:=])=(?![=>])", "<>"), ("eq-ne", r"<>|!=", "="),
    ("and-or", r"\bor\b", "and"),
    ("asc-desc", r"\basc\b", "desc"), ("asc-desc", r"\bdesc\b", "asc"),
    ("asc-desc", r"\bnulls\s+last\b", "nulls first"), ("asc-desc", r"\bnulls\s+first\b", "nulls last"),
    ("drop-not", r"\bnot\s+", ""), ("drop-not", r"\bis\s+null\b", "is not null"),
    ("left-join", r"\bleft\s+join\b", "join"),
    ("drop-distinct", r"\bdistinct\s+", ""),
]


def mutants(sql: str) -> list[Mutant]:
    """Every mutant of the file, in file order, without duplicates or no-ops."""
    m = mask(sql)
    low = m.lower()
    found: list[tuple[int, Mutant]] = []

    def add(op, start, end, new):
        found.append((start, _replace(sql, op, start, end, new)))

    for op, pattern, new in SWAPS:
        for x in re.finditer(pattern, low):
            add(op, x.start(), x.end(), new)

    # and -> or, except the `and` of `between x and y`
    for x in re.finditer(r"\band\b", low):
        if re.search(r"\bbetween\b(?:(?!\band\b)[^;])*$", low[max(0, x.start() - 80):x.start()]):
            continue
        add("and-or", x.start(), x.end(), "or")

    # binary minus/plus: surrounded by spaces, not a comment
    for x in re.finditer(r"(?<=\S) ([-+]) (?=\S)", low):
        add("plus-minus", x.start(1), x.end(1), "+" if x.group(1) == "-" else "-")

    # integer literals (not part of an identifier or a decimal)
    for x in re.finditer(r"(?<![\w.])\d+(?![\w.])", low):
        if re.search(r"\bselect\s+$", low[:x.start()]):
            continue                        # `exists (select 1 ...)`: the value is never read
        n = int(x.group())
        add("int-literal", x.start(), x.end(), str(n + 1))
        if n > 0:
            add("int-literal", x.start(), x.end(), str(n - 1))

    # delete a condition line `and ...` (balanced parentheses on the line)
    for x in re.finditer(r"(?m)^[ \t]*and\b[^\n]*(\n|$)", low):
        line = low[x.start():x.end()]
        if line.count("(") == line.count(")"):
            found.append((x.start(), Mutant("del-condition", _line_of(sql, x.start()), sql[x.start():x.end()].rstrip("\n"),
                                            "", sql[:x.start()] + sql[x.end():])))
    # `where <condition on the rest of the line>` -> `where true`
    for x in re.finditer(r"\bwhere\s+", low):
        s = x.end()
        eol = low.find("\n", s)
        eol = len(low) if eol < 0 else eol
        depth, e = 0, s
        while e < eol:                      # the condition ends at the line's end, an unmatched `)` or a clause
            if depth == 0 and re.match(r"\b(group\s+by|order\s+by|having|qualify|limit|window)\b", low[e:]):
                break
            if low[e] == "(":
                depth += 1
            elif low[e] == ")":
                if depth == 0:
                    break
                depth -= 1
            e += 1
        if depth == 0 and low[s:e].strip() not in ("", "true") and not re.search(r"filter\s*\(\s*$", low[:x.start()]):
            add("del-condition", s, s + len(low[s:e].rstrip()), "true")

    # delete an aggregate's filter clause
    for x in re.finditer(r"\s*\bfilter\s*\(", low):
        close = _match_paren(low, x.end() - 1)
        if close > 0:
            add("drop-filter", x.start(), close + 1, "")

    # coalesce(a, b, ...) -> coalesce(b, a, ...)
    for x in re.finditer(r"\bcoalesce\(", low):
        close = _match_paren(low, x.end() - 1)
        parts = _split_top(low, x.end(), close)
        if len(parts) >= 2:
            (a0, a1), (b0, b1) = parts[0], parts[1]
            first, second = sql[a0:a1].strip(), sql[b0:b1].strip()
            add("coalesce-swap", x.end(), close, second + ", " + first + sql[b1:close])

    # swap two adjacent `when ... then ...` branches of a case
    for x in re.finditer(r"\bcase\b", low):
        depth, i, end = 0, x.end(), -1
        for y in re.finditer(r"\bcase\b|\bend\b|[()]", low[x.end():]):
            t = y.group()
            if t in ("(", "case"):
                depth += 1
            elif t == ")" or (t == "end" and depth > 0):
                depth -= 1
            elif t == "end":
                end = x.end() + y.start()
                break
        if end < 0:
            continue
        # top-level `when` and `else` keywords of this case
        marks, depth = [], 0
        for y in re.finditer(r"\bcase\b|\bend\b|[()]|\bwhen\b|\belse\b", low[x.end():end]):
            t, p = y.group(), x.end() + y.start()
            if t in ("(", "case"):
                depth += 1
            elif t in (")", "end"):
                depth -= 1
            elif depth == 0:
                marks.append((t, p))
        whens = [p for t, p in marks if t == "when"]
        if not whens or low[x.end():whens[0]].strip():
            continue                        # a simple case (`case x when 1 ...`): distinct constants, order never matters
        bounds = [p for _, p in marks] + [end]
        for k in range(len(whens) - 1):
            a0 = whens[k]
            a1 = bounds[bounds.index(a0) + 1]
            b0 = a1
            b1 = bounds[bounds.index(b0) + 1]
            if low[b0:b0 + 4] != "when":
                continue
            first, second = sql[a0:a1], sql[b0:b1]
            # keep each branch's trailing whitespace in place
            fa, fb = first.rstrip(), second.rstrip()
            new = fb + first[len(fa):] + fa + second[len(fb):]
            add("case-order", a0, b1, new)

    seen, result = {sql}, []
    for _, mu in sorted(found, key=lambda t: (t[0], t[1].operator, t[1].after)):
        if mu.text not in seen:
            seen.add(mu.text)
            result.append(mu)
    return result
