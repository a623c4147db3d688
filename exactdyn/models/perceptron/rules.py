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
_z = sp.Symbol("z", real=True)  # the margin s x, argument of the loss


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


def _margin_rule(name, loss, pieces):
    """F(s, x) = -l'(s x) s, l'(z) differentiated from the loss l given on each side of z = 0 as
    (z < 0 piece, z > 0 piece); for s = -1 the margin -x swaps the sides."""
    neg, pos = (sp.diff(piece, _z) for piece in pieces)
    plus = (-neg.subs(_z, x), -pos.subs(_z, x))
    minus = (pos.subs(_z, -x), neg.subs(_z, -x))
    return Rule(name, loss, tuple(sp.expand(sp.simplify(e)) for e in plus),
                tuple(sp.expand(sp.simplify(e)) for e in minus))


_BCE = sp.log(1 + sp.exp(-_z))
RULES = {
    "logistic": ("l(z) = ln(1 + exp(-z)) (binary cross-entropy on labels +-1), F = s sigmoid(-s x)", (_BCE, _BCE)),
    "hebbian": ("l(z) = -z, F = s", (-_z, -_z)),
    "perceptron": ("l(z) = -z theta(-z), F = s theta(-s x)", (-_z, sp.Integer(0))),
    "adatron": ("l(z) = z^2 theta(-z)/2, F = -x theta(-s x)", (_z ** 2 / 2, sp.Integer(0))),
}


def rule_names():
    return tuple(RULES)


def rule(name):
    """The rule called `name` (see rule_names())."""
    if not isinstance(name, str) or name not in RULES:
        raise ExactdynError(f"unknown perceptron rule {str(name)[:40]!r}; known rules: {', '.join(RULES)}")
    return _derived_rule(name)


@lru_cache(maxsize=None)
def _derived_rule(name):
    return _margin_rule(name, *RULES[name])


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
