"""Update rules of the perceptron ("losses") and the derivation of their Gaussian averages.

A rule is the weight F(s, x) of the step J += (eta/sqrt N) F(s, x) xi, for the label s = +-1 and
the student field x; for a margin loss l(z) it is F = -l'(s x) s (gradient descent on l).  On
each side of x = 0 the weight is one sympy expression in x (a polynomial, or a sigmoid).

The ODEs need three averages over the Gaussian fields (x, y) with covariance [[Q, R], [R, T]]:
E1 = <F x>, E2 = <F y>, E3 = <F^2>, the label being s = sign(y), flipped with probability p.
For piecewise-polynomial rules they are derived here in closed form: in whitened polar
coordinates y = sqrt(T) r cos(phi), x = sqrt(Q) r cos(phi - theta), theta = arccos(R/sqrt(QT)),
each average is a radial Gaussian moment times a trigonometric integral over an angular sector.
"""
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ...errors import ExactdynError

x, Q, T, theta, p = sp.symbols("x Q T theta p", positive=True)
_r, _phi = sp.symbols("r phi", real=True)
_y = sp.Symbol("y", real=True)


@dataclass(frozen=True)
class Rule:
    """F(s, x) as (x < 0 piece, x > 0 piece) for s = +1 and for s = -1; `loss` says where F comes from."""

    name: str
    loss: str
    plus: tuple
    minus: tuple

    @property
    def closed_form(self):
        return all(e.is_polynomial(x) for e in self.plus + self.minus)

    def pieces(self):
        """((s, weight of that label, side, expression)): side -1 for x < 0, +1 for x > 0."""
        return tuple((s, 1 - p if s == 1 else p, side, expr)
                     for s, halves in ((1, self.plus), (-1, self.minus))
                     for side, expr in zip((-1, 1), halves))


def _margin_rule(name, loss, dloss):
    """F(s, x) = -l'(s x) s from the derivative dloss(z) = l'(z), evaluated on each side of x = 0
    (dloss is given as (z < 0 piece, z > 0 piece); s = -1 swaps the sides)."""
    neg, pos = dloss
    plus = (-neg.subs(_y, x), -pos.subs(_y, x))
    minus = (pos.subs(_y, -x), neg.subs(_y, -x))
    return Rule(name, loss, tuple(sp.expand(e) for e in plus), tuple(sp.expand(e) for e in minus))


def _logistic():
    z = _y
    dl = sp.diff(sp.log(1 + sp.exp(-z)), z)  # l(z) = ln(1 + e^-z), binary cross-entropy on labels +-1
    dl = sp.simplify(dl)
    return _margin_rule("logistic", "l(z) = ln(1 + exp(-z)) (binary cross-entropy), F = s sigmoid(-s x)",
                        (dl, dl))


RULES = {
    "logistic": _logistic,
    "hebbian": lambda: _margin_rule("hebbian", "l(z) = -z, F = s", (sp.Integer(-1), sp.Integer(-1))),
    "perceptron": lambda: _margin_rule("perceptron", "l(z) = -z theta(-z), F = s theta(-s x)",
                                       (sp.Integer(-1), sp.Integer(0))),
    "adatron": lambda: _margin_rule("adatron", "l(z) = z^2 theta(-z)/2, F = -x theta(-s x)",
                                    (_y, sp.Integer(0))),
}


def rule_names():
    return tuple(RULES)


@lru_cache(maxsize=None)
def rule(name):
    """The rule called `name` (see rule_names())."""
    if name not in RULES:
        raise ExactdynError(f"unknown perceptron rule {name!r}; known rules: {', '.join(RULES)}")
    return RULES[name]()


def _sector(side):
    """Angles phi (half plane y > 0) where x has the sign `side`, for 0 < theta < pi."""
    return (-sp.pi / 2, theta - sp.pi / 2) if side < 0 else (theta - sp.pi / 2, sp.pi / 2)


@lru_cache(maxsize=None)
def closed_form_averages(name):
    """(E1, E2, E3) of a piecewise-polynomial rule as sympy expressions in Q, T, theta, p.

    The joint flip (x, y, s) -> (-x, -y, -s) leaves F x, F y and F^2 unchanged (F(-s, -x) = -F(s, x)
    for every rule here), so each average is twice its value on the half plane y > 0, s = +-1."""
    ru = rule(name)
    if not ru.closed_form:
        raise ExactdynError(f"the {name} rule's averages have no closed form: use quadrature")
    xf = sp.sqrt(Q) * _r * sp.cos(_phi - theta)
    yf = sp.sqrt(T) * _r * sp.cos(_phi)
    out = []
    for integrand in (lambda F: F * x, lambda F: F * _y, lambda F: F ** 2):
        total = sp.Integer(0)
        for s, weight, side, expr in ru.pieces():
            g = sp.expand(sp.expand_trig(integrand(expr).subs(x, xf).subs(_y, yf)))
            for (n,), coeff in sp.Poly(g, _r).terms():
                primitive = sp.integrate(coeff, _phi)
                lo, hi = _sector(side)
                angular = primitive.subs(_phi, hi) - primitive.subs(_phi, lo)
                total += 2 * weight * _radial_moment(n) * angular / (2 * sp.pi)
        out.append(sp.collect(sp.expand(sp.expand_trig(total)), p))
    return tuple(out)


@lru_cache(maxsize=None)
def _radial_moment(n):
    """int_0^oo r^(n+1) exp(-r^2/2) dr: the radial part of a degree-n monomial in the fields."""
    return sp.integrate(_r ** (n + 1) * sp.exp(-_r ** 2 / 2), (_r, 0, sp.oo))
