"""Activations whose Gaussian expectations have no closed form: tanh and sigmoid.

Their expectations stay unevaluated: ``TanhGaussian(orders, cov)`` stands for
E[prod_a prod_{d in orders[a]} tanh^(d)(u_a)] over zero-mean Gaussian slots u with covariance
``cov`` (upper triangle, row by row).  Two slots that are one field (equal variances and
covariance, and equal covariances with every other slot) merge into one slot; a product that is
odd under u -> -u is 0 (tanh^(d) has the parity of d + 1).  The numbers come from
exactdyn.numeric.quadrature (certified by ball quadrature, or float64 Gauss-Hermite).

sigmoid(x) = (1 + tanh(x/2)) / 2 exactly, so sigmoid^(d)(x) = [d = 0]/2 + 2^(-d-1) tanh^(d)(x/2)
and a sigmoid expectation is a finite sum of tanh expectations at covariance C/4.
"""
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import sympy as sp

from .expectations import Activation, register_activation, slot_covariance, symmetric_from_upper, upper_entries

_PRIMES = {0: "", 1: "'", 2: "''", 3: "'''"}


def _slot_count(m):
    n = int(round((np.sqrt(8 * m + 1) - 1) / 2))
    return n if n * (n + 1) // 2 == m else None


class TanhGaussian(sp.Function):
    """E[prod_a prod_{d in orders[a]} tanh^(d)(u_a)], u ~ N(0, C); see the module docstring."""

    nargs = 2

    @classmethod
    def eval(cls, orders, cov):
        if not isinstance(orders, sp.Tuple) or not isinstance(cov, sp.Tuple):
            raise TypeError("TanhGaussian(orders, cov) takes two Tuples")
        n = len(orders)
        if _slot_count(len(cov)) != n:
            raise TypeError("TanhGaussian: cov must hold the upper triangle of an n x n matrix, n = len(orders)")
        slots = [sorted(int(d) for d in o) for o in orders]
        if sum(d + 1 for o in slots for d in o) % 2:
            return sp.Integer(0)
        C = symmetric_from_upper(cov, n)
        for a, b in combinations(range(n), 2):
            if C[a, a] == C[b, b] == C[a, b] and all(C[a, c] == C[b, c] for c in range(n)):
                keep = [c for c in range(n) if c != b]
                merged = [slots[c] if c != a else sorted(slots[a] + slots[b]) for c in keep]
                return cls(sp.Tuple(*[sp.Tuple(*o) for o in merged]), upper_entries(C.extract(keep, keep)))
        canonical = sp.Tuple(*[sp.Tuple(*o) for o in slots])
        if canonical != orders:
            return cls(canonical, cov)
        return None

    @property
    def orders(self):
        return tuple(tuple(int(d) for d in o) for o in self.args[0])

    def covariance(self):
        return symmetric_from_upper(self.args[1], len(self.args[0]))

    def _latex(self, printer):
        factors = []
        for a, orders in enumerate(self.orders, start=1):
            for d in sorted(set(orders)):
                power = orders.count(d)
                head = rf"\tanh{_PRIMES.get(d, f'^{{({d})}}')}(u_{{{a}}})"
                factors.append(head if power == 1 else rf"{head}^{{{power}}}")
        C = self.covariance()
        rows = r" \\ ".join(" & ".join(printer._print(C[a, b]) for b in range(C.shape[1])) for a in range(C.shape[0]))
        return (r"\left\langle " + r"\,".join(factors) + r"\right\rangle_{u \sim \mathcal{N}\left(0,\,"
                r"\left(\begin{smallmatrix}" + rows + r"\end{smallmatrix}\right)\right)}")


class QuadratureActivation(Activation):
    """An activation whose expectations are TanhGaussian terms, evaluated by quadrature (never
    disk-cached: Activation.cacheable is False for it)."""

    legend_note = (r"These expectations have no closed form: exactdyn evaluates them by quadrature, "
                   r"ball-certified or in float64 with the digits verified by a second, finer run.")


@dataclass(frozen=True)
class Tanh(QuadratureActivation):
    """g(x) = tanh(x)."""

    name = "tanh"

    def g(self, u):
        return sp.tanh(u)

    def numeric_g(self, x):
        return np.tanh(x)

    def numeric_dg(self, x):
        return 1 - np.tanh(x) ** 2

    def _derive_expectation(self, derivs):
        n = len(derivs)
        return TanhGaussian(sp.Tuple(*[sp.Tuple(d) for d in derivs]), upper_entries(slot_covariance(n)))


@dataclass(frozen=True)
class Sigmoid(QuadratureActivation):
    """g(x) = 1 / (1 + exp(-x)) = (1 + tanh(x/2)) / 2."""

    name = "sigmoid"

    def g(self, u):
        return 1 / (1 + sp.exp(-u))

    def numeric_g(self, x):
        from scipy.special import expit

        return expit(x)

    def numeric_dg(self, x):
        from scipy.special import expit

        s = expit(x)
        return s * (1 - s)

    def _derive_expectation(self, derivs):
        # g^(d)(u) = [d = 0]/2 + 2^(-d-1) tanh^(d)(u/2): expand the product over the slots.
        n = len(derivs)
        C = slot_covariance(n) / 4
        total = sp.Integer(0)
        for size in range(n + 1):
            for chosen in combinations(range(n), size):
                if any(derivs[a] for a in range(n) if a not in chosen):
                    continue  # a derivative factor has no constant part
                coef = sp.Rational(1, 2) ** (n - size) * sp.Mul(*[sp.Rational(1, 2) ** (derivs[a] + 1) for a in chosen])
                if not chosen:
                    total += coef
                    continue
                orders = sp.Tuple(*[sp.Tuple(derivs[a]) for a in chosen])
                total += coef * TanhGaussian(orders, upper_entries(C.extract(list(chosen), list(chosen))))
        return total


register_activation("tanh", Tanh())
register_activation("sigmoid", Sigmoid())
