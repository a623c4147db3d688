"""The immutable result of a derivation: sympy symbols and expressions, no numbers evaluated."""
from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class ODESystem:
    """d(states)/d(alpha) = rhs, closed.

    ``intermediates`` are (symbol, expression) pairs to evaluate in order before ``rhs`` and
    ``eps_g`` (first-order covariances in the eigenmode basis, Gaussian expectations of erf).
    ``relations`` are displayed identities (the Cayley-Hamilton closure) already used in ``rhs``.
    ``layout`` names each state: (kind, order-or-group, a, b).
    ``groups`` (eigenmode basis only) gives, per eigenvalue group, the indices in ``params`` of the
    group's own parameters (lambda_k, rho_k, t^k), in the same order for every group: each group's
    rhs is then the first group's in its own symbols (states: those whose layout names the group),
    which lets the numeric layer compile one group and evaluate all of them at once.
    """

    title: str
    basis: str
    orders: tuple
    states: tuple
    layout: tuple
    params: tuple
    intermediates: tuple
    rhs: tuple
    eps_g: sp.Expr
    relations: tuple
    latex_names: tuple
    notes: tuple = ()
    groups: tuple = ()

    def latex_name_map(self):
        return dict(self.latex_names)

    def explicit(self, expr):
        """`expr` with every intermediate substituted, in terms of states and params only."""
        for sym, value in reversed(self.intermediates):
            expr = expr.xreplace({sym: value})
        return expr

    def explicit_rhs(self):
        return tuple(self.explicit(e) for e in self.rhs)

    def rhs_of(self, state):
        return self.rhs[self.states.index(state)]
