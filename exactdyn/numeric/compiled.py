"""Numeric evaluation of a derived system: compiled once with lambdify, evaluated many times.

The system's intermediates are handed to lambdify as its common subexpressions, so each is
computed once per call; no sympy runs at evaluation time.
"""
from dataclasses import dataclass

import sympy as sp

from ..errors import ExactdynError

BACKENDS = {"float": ["math"], "mpmath": ["mpmath"]}


@dataclass(frozen=True)
class CompiledSystem:
    """rhs(state, params) -> list of d(state)/d(alpha); eps_g(state, params) -> number.

    ``state`` and ``params`` are sequences ordered as the system's ``states`` and ``params``.
    With the mpmath backend, call inside ``exactdyn.precision.working_precision``.
    """

    system: object
    backend: str
    _rhs: object
    _eps: object

    def rhs(self, state, params):
        return self._rhs(state, params)

    def eps_g(self, state, params):
        return self._eps(state, params)


def compile_system(system, backend="float"):
    if backend not in BACKENDS:
        raise ExactdynError(f"unknown backend {backend!r}: choose {', '.join(BACKENDS)}")
    args = [list(system.states), list(system.params)]
    steps = list(system.intermediates)

    def with_intermediates(exprs):
        replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_x"), optimizations=None)
        return steps + replacements, reduced

    rhs = sp.lambdify(args, list(system.rhs), modules=BACKENDS[backend], cse=with_intermediates)
    eps = sp.lambdify(args, [system.eps_g], modules=BACKENDS[backend], cse=with_intermediates)
    return CompiledSystem(system, backend, rhs, lambda s, p: eps(s, p)[0])
