"""ODESystem <-> plain JSON data, decoded through an allowlist of sympy node types.

Expressions are one table of nodes, each naming its arguments by their index among *earlier*
nodes, so decoding is one loop: no recursion, no cycles, no parser, no eval.  Shared
subexpressions are stored once.  Node forms:
``["int", "digits"]``, ``["rat", "p", "q"]``, ``["sym", name, assumption-set index]``,
``["const", "pi" | "E"]``, ``[operation, index, ...]`` with operation Add, Mul, Pow or a
function in FUNCTIONS.  Nodes are rebuilt with ``evaluate=False``, so a decoded expression is
structurally identical to the encoded one.
"""
from dataclasses import fields
import json
import re

import sympy as sp

from .system import ODESystem

FORMAT = 1
MAX_DIGITS = 4000    # per integer; Python itself refuses int() of more than 4300 digits
MAX_DEPTH = 500      # expression depth; derived systems stay below 20
CONSTANTS = {"pi": sp.S.Pi, "E": sp.S.Exp1}
OPERATIONS = {"Add": (sp.Add, None), "Mul": (sp.Mul, None), "Pow": (sp.Pow, 2),
              **{f.__name__: (f, 1) for f in (sp.erf, sp.exp, sp.asin, sp.acos, sp.atan, sp.log, sp.Abs)}}
ASSUMPTIONS = frozenset((
    "algebraic", "antihermitian", "commutative", "complex", "composite", "even", "extended_negative",
    "extended_nonnegative", "extended_nonpositive", "extended_nonzero", "extended_positive",
    "extended_real", "finite", "hermitian", "imaginary", "infinite", "integer", "irrational",
    "negative", "noninteger", "nonnegative", "nonpositive", "nonzero", "odd", "polar", "positive",
    "prime", "rational", "real", "transcendental", "zero"))
# How each ODESystem field is stored; a field missing here makes encoding fail loudly.
FIELDS = {"title": "text", "basis": "text", "orders": "ints", "states": "exprs", "layout": "rows",
          "params": "exprs", "intermediates": "pairs", "rhs": "exprs", "eps_g": "expr",
          "relations": "pairs", "latex_names": "named", "notes": "texts",
          "groups": "rows"}
_TAGS = {cls: tag for tag, (cls, _) in OPERATIONS.items()}
_INTEGER = re.compile(r"-?[0-9]+")
_INTEGER_BOUND = 10 ** MAX_DIGITS


class Unsupported(ValueError):
    """A system holding something the format does not (it is then simply not cached)."""


class Refused(ValueError):
    """Data that is not a well-formed encoding."""


def _require(condition, why):
    if not condition:
        raise Refused(why)


class _Encoder:
    def __init__(self):
        self.nodes, self.index, self.assumption_sets, self.set_index = [], {}, [], {}

    def ref(self, expr):
        """The index of `expr` in the node table, adding it after its arguments (iteratively)."""
        stack = [expr]
        while stack:
            e = stack[-1]
            if e in self.index:
                stack.pop()
                continue
            pending = [a for a in e.args if a not in self.index]
            if pending:
                stack += pending
                continue
            stack.pop()
            self.index[e] = len(self.nodes)
            self.nodes.append(self._node(e))
        return self.index[expr]

    def _node(self, e):
        if isinstance(e, sp.Rational):
            parts = (e.p,) if e.q == 1 else (e.p, e.q)
            if any(abs(n) >= _INTEGER_BOUND for n in parts):
                raise Unsupported(f"an integer of more than {MAX_DIGITS} digits")
            return ["int" if e.q == 1 else "rat", *map(str, parts)]
        if type(e) is sp.Symbol:
            return ["sym", e.name, self._assumption_set(e.assumptions0)]
        for name, value in CONSTANTS.items():
            if e is value:
                return ["const", name]
        if type(e) not in _TAGS:
            raise Unsupported(f"cannot store a {type(e).__name__}")
        return [_TAGS[type(e)], *(self.index[a] for a in e.args)]

    def _assumption_set(self, assumptions):
        if not set(assumptions) <= ASSUMPTIONS:
            raise Unsupported(f"unknown assumptions {sorted(set(assumptions) - ASSUMPTIONS)}")
        key = tuple(sorted(assumptions.items()))
        if key not in self.set_index:
            self.set_index[key] = len(self.assumption_sets)
            self.assumption_sets.append(dict(key))
        return self.set_index[key]


def encode(system):
    """`system` as JSON-ready data (lists, dicts, strings, ints)."""
    unmatched = {f.name for f in fields(ODESystem)} ^ set(FIELDS)
    if unmatched:
        raise Unsupported(f"ODESystem fields and stored forms differ: {sorted(unmatched)}")
    enc = _Encoder()
    stored = {name: _encode_field(kind, getattr(system, name), enc.ref) for name, kind in FIELDS.items()}
    return {"assumptions": enc.assumption_sets, "nodes": enc.nodes, "system": stored}


def _encode_field(kind, value, ref):
    if kind == "text":
        return value
    if kind in ("texts", "ints", "rows"):
        return [list(v) if kind == "rows" else v for v in value]
    if kind == "expr":
        return ref(value)
    if kind == "exprs":
        return [ref(e) for e in value]
    if kind == "pairs":
        return [[ref(s), ref(e)] for s, e in value]
    return [[ref(s), text] for s, text in value]   # named


def decode(data):
    """The ODESystem encoded in `data`; raises Refused unless `data` is a well-formed encoding."""
    _require(isinstance(data, dict) and set(data) == {"assumptions", "nodes", "system"}, "not an entry")
    sets = [_assumption_kwargs(a) for a in _list(data["assumptions"])]
    built = _build_nodes(_list(data["nodes"]), sets)
    stored = data["system"]
    _require(isinstance(stored, dict) and set(stored) == set(FIELDS), "fields differ")
    return ODESystem(**{name: _decode_field(kind, stored[name], built) for name, kind in FIELDS.items()})


def _list(value):
    _require(isinstance(value, list), "a list expected")
    return value


def _text(value):
    _require(isinstance(value, str), "a string expected")
    return value


def _int(value):
    _require(isinstance(value, int) and not isinstance(value, bool), "an integer expected")
    return value


def _assumption_kwargs(value):
    _require(isinstance(value, dict) and set(value) <= ASSUMPTIONS, "unknown assumptions")
    _require(all(isinstance(v, bool) for v in value.values()), "assumptions are true or false")
    return value


def _integer(text):
    _require(isinstance(text, str) and _INTEGER.fullmatch(text), "not an integer")
    _require(len(text.lstrip("-")) <= MAX_DIGITS, f"an integer of more than {MAX_DIGITS} digits")
    return int(text)


def _build_nodes(nodes, assumption_sets):
    built, depths = [], []
    for node in nodes:
        _require(isinstance(node, list) and node and isinstance(node[0], str), "bad node")
        tag, args = node[0], node[1:]
        if tag in OPERATIONS:
            expr, depth = _operation(tag, args, built, depths)
        else:
            expr, depth = _leaf(tag, args, assumption_sets), 1
        built.append(expr)
        depths.append(depth)
    return built


def _operation(tag, args, built, depths):
    cls, arity = OPERATIONS[tag]
    _require(len(args) == arity if arity else len(args) >= 2, f"{tag} with {len(args)} arguments")
    _require(all(0 <= _int(i) < len(built) for i in args), "an argument that is not an earlier node")
    depth = 1 + max(depths[i] for i in args)
    _require(depth <= MAX_DEPTH, f"an expression deeper than {MAX_DEPTH}")
    return cls(*(built[i] for i in args), evaluate=False), depth


def _leaf(tag, args, assumption_sets):
    if tag == "int" and len(args) == 1:
        return sp.Integer(_integer(args[0]))
    if tag == "rat" and len(args) == 2:
        p, q = _integer(args[0]), _integer(args[1])
        _require(q > 1, "a denominator below 2")
        return sp.Rational(p, q)
    if tag == "sym" and len(args) == 2:
        _require(0 <= _int(args[1]) < len(assumption_sets), "no such assumption set")
        return sp.Symbol(_text(args[0]), **assumption_sets[args[1]])
    _require(tag == "const" and len(args) == 1 and args[0] in CONSTANTS, f"unknown node {tag!r}")
    return CONSTANTS[args[0]]


def _decode_field(kind, value, built):
    def ref(i):
        _require(0 <= _int(i) < len(built), "no such node")
        return built[i]

    if kind == "text":
        return _text(value)
    if kind == "expr":
        return ref(value)
    items = _list(value)
    if kind in ("texts", "ints"):
        return tuple(map(_text if kind == "texts" else _int, items))
    if kind == "exprs":
        return tuple(map(ref, items))
    _require(all(isinstance(v, list) and (len(v) == 2 or kind == "rows") for v in items), "bad pairs")
    if kind == "rows":
        return tuple(tuple(x if isinstance(x, str) else _int(x) for x in row) for row in items)
    second = ref if kind == "pairs" else _text
    return tuple((ref(a), second(b)) for a, b in items)


def dumps(data):
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def loads(blob):
    """Strict JSON: no floats, NaN or Infinity; integers of at most MAX_DIGITS digits."""
    return json.loads(blob, parse_int=_integer, parse_float=_no_float, parse_constant=_no_float)


def _no_float(text):
    raise Refused(f"a non-integer number {text[:20]!r}")
