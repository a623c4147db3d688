"""Derivation of the closed order-parameter ODEs of the soft committee machine (docs/model.md section 1).

One-pass SGD, J_i <- J_i + (eta/sqrt N) delta_i xi, delta_i = 2 c v_i g'(x_i)(zeta - sigma) for the
loss c (sigma - zeta)^2.  Averaging an increment needs, besides expectations over the first-order
fields (x, y), expectations with one higher-order field z; Stein's lemma makes those linear in
z's covariances: <z F(u)> = sum_a Cov(z, u_a) <dF/du_a>.

Moment basis: orders l = 1..L of R^(l) = J Sigma^l B / N, Q^(l); order L+1 is eliminated by
Cayley-Hamilton, X^(L+1) = -sum_{j=1..L} c_{j-1} X^(j).
Eigenmode basis: r^k = J P_k B / N, q^k per eigenvalue group k = 1..L; R^(l) = sum_k lambda_k^l r^k.
"""
from dataclasses import dataclass
from itertools import combinations_with_replacement

import sympy as sp

from ..errors import ExactdynError
from ..numbers import to_fraction
from .expectations import Activation, Polynomial, activation_from_name
from .system import ODESystem
from .conventions import MAX_WIDTH, output_weight, OUTPUT_WEIGHTS

ETA = sp.Symbol("eta", positive=True)
ELL = sp.Symbol("l", integer=True, positive=True)
_PRIME = {0: "g", 1: "g'", 2: "g''", 3: "g'''"}


@dataclass(frozen=True)
class Structure:
    """What a derivation depends on (numbers such as eta and the spectrum stay symbols)."""

    activation: object
    K: int
    M: int
    L: int
    output_weights: str = "one"
    teacher_output_weights: str = "one"
    loss_factor: object = sp.Rational(1, 2)

    @classmethod
    def of(cls, model):
        return cls(model.activation, model.K, model.M, model.L, model.output_weights,
                   model.teacher_output_weights, model.loss_factor)

    @classmethod
    def named(cls, activation, K, M, L, output_weights=None, loss_factor=None):
        """The papers' conventions by activation name: the quadratic network (docs/model.md section 2)
        has mean output weights and loss (sigma - zeta)^2; the committee machines weights one and
        loss (sigma - zeta)^2 / 2.  `activation` is a name or an Activation; `None` picks the default."""
        quadratic_paper = activation == "quadratic"
        act = activation_from_name(activation) if isinstance(activation, str) else activation
        weights = output_weights or ("mean" if quadratic_paper else "one")
        loss = loss_factor if loss_factor is not None else (1 if quadratic_paper else sp.Rational(1, 2))
        for name, width in (("K (student width)", K), ("M (teacher width)", M)):
            if isinstance(width, int) and not isinstance(width, bool) and width > MAX_WIDTH:
                raise ExactdynError(f"{name} must be at most {MAX_WIDTH}, got {width}")
        return cls(act, K, M, L, weights, weights, loss)

    def __post_init__(self):
        if not isinstance(self.activation, Activation):
            raise ExactdynError(f"a Structure needs an Activation (exactdyn.activations), got {self.activation!r}: "
                                "Structure.named takes names")
        for name in ("K", "M", "L"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ExactdynError(f"{name} must be a whole number >= 1, got {value!r}")
            if name != "L" and value > MAX_WIDTH:
                raise ExactdynError(f"{name} must be at most {MAX_WIDTH}, got {value}")
        loss = to_fraction(self.loss_factor, "loss factor")
        if loss <= 0:
            raise ExactdynError(f"the loss factor must be positive, got {loss}")
        object.__setattr__(self, "loss_factor", sp.Rational(loss.numerator, loss.denominator))
        for conv in (self.output_weights, self.teacher_output_weights):
            if conv not in OUTPUT_WEIGHTS:
                raise ExactdynError(f"output weights must be one of {', '.join(OUTPUT_WEIGHTS)}, got {conv!r}")

    def key(self):
        act = self.activation
        act_key = act.name if not isinstance(act, Polynomial) else "poly" + "_".join(map(str, act.coeffs))
        return (f"{act_key}-K{self.K}-M{self.M}-L{self.L}-{self.output_weights}-{self.teacher_output_weights}"
                f"-loss{self.loss_factor}").replace("/", "over")


def _ix(*idx):
    return ",".join(map(str, idx)) if any(i >= 10 for i in idx) else "".join(map(str, idx))


class _Namer:
    """Creates symbols and records their LaTeX names."""

    def __init__(self):
        self.latex = {}

    def sym(self, name, latex, **assumptions):
        s = sp.Symbol(name, real=True, **assumptions)
        self.latex[s] = latex
        return s

    def order_param(self, kind, order, a, b):
        """R^(order)_{ab}, Q^(order)_{ab} or T^(order)_{ab}; order an int or an expression in l."""
        if kind in "QT" and a > b:
            a, b = b, a
        label = str(order).replace(" ", "")
        return self.sym(f"{kind}{label}_{a}_{b}", rf"{kind}^{{({sp.latex(order)})}}_{{{_ix(a, b)}}}")

    def mode_param(self, kind, k, a, b):
        """r^k_{ab}, q^k_{ab} or t^k_{ab} (overlaps restricted to eigenvalue group k)."""
        if kind in "qt" and a > b:
            a, b = b, a
        return self.sym(f"{kind}{k}_{a}_{b}", rf"{kind}^{{{k}}}_{{{_ix(a, b)}}}")

    def atom(self, slots):
        name = "E_" + "_".join(f"{d}{f[0]}{f[1]}" for f, d in slots)
        tex = r"\langle " + r"\, ".join(f"{_PRIME.get(d, f'g^{{({d})}}')}({f[0]}_{{{f[1]}}})" for f, d in slots) + r"\rangle"
        return self.sym(name, tex)


class _Derivation:
    def __init__(self, structure, namer, cov1):
        self.s = structure
        self.namer = namer
        self.cov1 = cov1  # first-order covariance of two fields
        self.inline = isinstance(structure.activation, Polynomial)
        self.atoms = {}
        c = structure.loss_factor
        v = output_weight(structure.output_weights, structure.K)
        w = output_weight(structure.teacher_output_weights, structure.M)
        self.v, self.w = v, w
        X = [("x", i) for i in range(1, structure.K + 1)]
        Y = [("y", n) for n in range(1, structure.M + 1)]
        # delta_i as a list of (coefficient, slots), slot = (field, derivative order)
        self.delta = {
            i: [(2 * c * v * w, ((("x", i), 1), (yn, 0)))for yn in Y]
            + [(-2 * c * v * v, ((("x", i), 1), (xj, 0))) for xj in X]
            for i in range(1, structure.K + 1)
        }
        self.output = [(v, xj) for xj in X] + [(-w, yn) for yn in Y]  # sigma - zeta

    def expect(self, slots):
        """E[prod g^(d)(field)] over the first-order fields: an atom symbol, or inline for polynomials."""
        slots = tuple(sorted(slots))
        if slots not in self.atoms:
            generic = self.s.activation.expectation(tuple(d for _, d in slots))
            closed = self._instance(generic, [f for f, _ in slots])
            self.atoms[slots] = (closed if self.inline else self.namer.atom(slots), closed)
        return self.atoms[slots][0]

    def _instance(self, generic, fields):
        """`generic` at the slots' covariances.  A field in two slots makes sqrt((1 + C_11)(1 + C_22))
        a square root of a square: its variance enters first as a nonnegative dummy, so that sympy
        takes the root 1 + C_11 rather than Abs(1 + C_11)."""
        var = {f: sp.Dummy(nonnegative=True) for f in fields if fields.count(f) > 1}
        n = len(fields)
        sub = {sp.Symbol(f"C_{a + 1}{b + 1}", real=True):
               var[fields[a]] if fields[a] == fields[b] and fields[a] in var else self.cov1(fields[a], fields[b])
               for a in range(n) for b in range(a, n)}
        closed = generic.xreplace(sub).xreplace({d: self.cov1(f, f) for f, d in var.items()})
        # An Abs left wraps 1 + the variance of one field in both plain slots under the tilted law.
        return closed.replace(lambda e: isinstance(e, sp.Abs) and e.args[0].as_coeff_Add()[0] == 1,
                              lambda e: e.args[0])

    def with_probe(self, terms, cov_probe):
        """<z * sum coef * prod slots> by Stein's lemma; cov_probe(field) = Cov(z, field)."""
        total = sp.Integer(0)
        for coef, slots in terms:
            for a, (f, d) in enumerate(slots):
                raised = slots[:a] + ((f, d + 1),) + slots[a + 1:]
                total += coef * cov_probe(f) * self.expect(raised)
        return total

    def delta_delta(self, i, k):
        return sum((c1 * c2 * self.expect(s1 + s2) for c1, s1 in self.delta[i] for c2, s2 in self.delta[k]),
                   sp.Integer(0))

    def eps_g(self):
        c = self.s.loss_factor
        return c * sum((a * b * self.expect(((f, 0), (h, 0))) for a, f in self.output for b, h in self.output),
                       sp.Integer(0))

    def R_rhs(self, i, n, probe_y):
        return ETA * self.with_probe(self.delta[i], lambda f: probe_y(n, f))

    def Q_rhs(self, i, k, probe_x, kappa):
        return (ETA * (self.with_probe(self.delta[i], lambda f: probe_x(k, f))
                       + self.with_probe(self.delta[k], lambda f: probe_x(i, f)))
                + ETA ** 2 * kappa * self.delta_delta(i, k))

    def intermediates(self):
        if self.inline:
            return ()
        return tuple((sym, closed) for sym, closed in self.atoms.values())


def _simplify(expr, inline):
    return sp.expand(expr) if inline else sp.collect(sp.expand(expr), ETA)


def _first_order_cov(namer):
    def cov1(f, h):
        kinds = f[0] + h[0]
        if kinds == "xx":
            return namer.order_param("Q", 1, f[1], h[1])
        if kinds == "yy":
            return namer.order_param("T", 1, f[1], h[1])
        x, y = (f, h) if f[0] == "x" else (h, f)
        return namer.order_param("R", 1, x[1], y[1])
    return cov1


def _pairs(n):
    return list(combinations_with_replacement(range(1, n + 1), 2))


def _model_title(s, basis):
    return (f"{s.activation.name} soft committee machine, K={s.K}, M={s.M}, L={s.L}, "
            f"output weights {s.output_weights}/{s.teacher_output_weights}, loss {s.loss_factor}(sigma-zeta)^2, "
            f"{basis} basis")


def derive_moment(structure):
    """The moment hierarchy over orders 1..L, closed by Cayley-Hamilton."""
    s = structure
    namer = _Namer()
    der = _Derivation(s, namer, _first_order_cov(namer))
    L = s.L
    c = [namer.sym(f"c{j}", f"c_{{{j}}}") for j in range(L)]
    tau = {k: namer.sym(f"tau{k}", rf"\tau_{{{k}}}") for k in range(2, L + 2)}

    def param(kind, order, a, b):
        if order <= L:
            return namer.order_param(kind, order, a, b)
        return -sum(c[j - 1] * namer.order_param(kind, j, a, b) for j in range(1, L + 1))

    def cov_of(kind_probe, order):
        def probe(idx, f):
            if kind_probe == "y":   # z = y^(l)_idx
                return param("R", order + 1, f[1], idx) if f[0] == "x" else param("T", order + 1, idx, f[1])
            return param("Q", order + 1, idx, f[1]) if f[0] == "x" else param("R", order + 1, idx, f[1])
        return probe

    states, layout, rhs = [], [], []
    for l in range(1, L + 1):
        for i in range(1, s.K + 1):
            for n in range(1, s.M + 1):
                states.append(namer.order_param("R", l, i, n))
                layout.append(("R", l, i, n))
                rhs.append(der.R_rhs(i, n, cov_of("y", l)))
        for i, k in _pairs(s.K):
            states.append(namer.order_param("Q", l, i, k))
            layout.append(("Q", l, i, k))
            rhs.append(der.Q_rhs(i, k, cov_of("x", l), tau[l + 1]))
    eps = der.eps_g()
    teacher = [namer.order_param("T", l, n, m) for l in range(1, L + 1) for n, m in _pairs(s.M)]
    relations = tuple(
        (namer.sym(f"{kind}{L + 1}_{a}_{b}", rf"{kind}^{{({L + 1})}}_{{{_ix(a, b)}}}"), param(kind, L + 1, a, b))
        for kind, pairs in (("R", [(i, n) for i in range(1, s.K + 1) for n in range(1, s.M + 1)]),
                            ("Q", _pairs(s.K)), ("T", _pairs(s.M)))
        for a, b in pairs)
    return ODESystem(
        title=_model_title(s, "moment"), basis="moment", orders=tuple(range(1, L + 1)),
        states=tuple(states), layout=tuple(layout), params=(ETA, *c, *tau.values(), *teacher),
        intermediates=der.intermediates(), rhs=tuple(_simplify(e, der.inline) for e in rhs),
        eps_g=_simplify(eps, der.inline), relations=relations,
        latex_names=tuple(namer.latex.items()) + ((ETA, r"\eta"),),
        notes=(f"orders kept: l = 1..{L}; order {L + 1} eliminated by Cayley-Hamilton "
               f"on the minimal polynomial z^{L} + sum_j c_j z^j",))


def derive_general_order(structure):
    """dR^(l)/dalpha and dQ^(l)/dalpha with the order l left symbolic (the papers' display form)."""
    s = structure
    namer = _Namer()
    der = _Derivation(s, namer, _first_order_cov(namer))
    nxt = ELL + 1
    tau = namer.sym("tau(l+1)", r"\tau_{l+1}")

    def probe_y(idx, f):
        return namer.order_param("R", nxt, f[1], idx) if f[0] == "x" else namer.order_param("T", nxt, idx, f[1])

    def probe_x(idx, f):
        return namer.order_param("Q", nxt, idx, f[1]) if f[0] == "x" else namer.order_param("R", nxt, idx, f[1])

    eqs = []
    for i in range(1, s.K + 1):
        for n in range(1, s.M + 1):
            eqs.append((namer.order_param("R", ELL, i, n), _simplify(der.R_rhs(i, n, probe_y), der.inline)))
    for i, k in _pairs(s.K):
        eqs.append((namer.order_param("Q", ELL, i, k), _simplify(der.Q_rhs(i, k, probe_x, tau), der.inline)))
    return tuple(eqs), der.intermediates(), {**namer.latex, ETA: r"\eta"}


def _group_overlaps(s):
    """The overlaps of one eigenvalue group as (kind, a, b): its states r, q, then the teacher's t."""
    return ([("r", i, n) for i in range(1, s.K + 1) for n in range(1, s.M + 1)]
            + [("q", i, j) for i, j in _pairs(s.K)] + [("t", n, m) for n, m in _pairs(s.M)])


def _group_symbols(s, namer, k):
    """lambda_k, rho_k and the overlaps of group k as _group_overlaps orders them.  k = "" gives
    the generic group: its names sort among all other symbols just as any group's names do."""
    return (namer.sym(f"lam{k}", rf"\lambda_{{{k}}}", positive=True),
            namer.sym(f"frac{k}", rf"\rho_{{{k}}}", positive=True),
            *(namer.mode_param(kind, k, a, b) for kind, a, b in _group_overlaps(s)))


def _group_template(s, der):
    """The simplified rhs of one generic eigenvalue group and its symbols (_group_symbols):
    every group's equations are this template in the group's own symbols."""
    generic = _group_symbols(s, _Namer(), "")
    lam, frac = generic[:2]
    overlap = dict(zip(_group_overlaps(s), generic[2:]))

    def ov(kind, a, b):
        return overlap[(kind, *sorted((a, b)))] if kind in "qt" else overlap[(kind, a, b)]

    def probe_y(idx, f):   # z = B_idx P_k xi / sqrt N
        return lam * (ov("r", f[1], idx) if f[0] == "x" else ov("t", idx, f[1]))

    def probe_x(idx, f):
        return lam * (ov("q", idx, f[1]) if f[0] == "x" else ov("r", idx, f[1]))

    rhs = ([der.R_rhs(i, n, probe_y) for i in range(1, s.K + 1) for n in range(1, s.M + 1)]
           + [der.Q_rhs(i, j, probe_x, lam * frac) for i, j in _pairs(s.K)])
    return generic, [_simplify(e, der.inline) for e in rhs]


def _rename(expr, sub):
    """`expr` with its symbols renamed by `sub`.  The new names sort as the old ones do, so each
    Add and Mul keeps its canonical argument order and is rebuilt without sorting again
    (_from_args), many times faster than xreplace."""
    if expr in sub:
        return sub[expr]
    args = tuple(_rename(a, sub) for a in expr.args)
    if all(new is old for new, old in zip(args, expr.args)):
        return expr
    if isinstance(expr, (sp.Add, sp.Mul)):
        return expr.func._from_args(args)
    return expr.func(*args)


def derive_mode(structure):
    """The same dynamics per eigenvalue group k = 1..L: r^k, q^k, with lambda_k and the fraction
    rho_k of input dimensions in group k as parameters."""
    s = structure
    namer = _Namer()
    L = s.L
    lam = [namer.sym(f"lam{k}", rf"\lambda_{{{k}}}", positive=True) for k in range(1, L + 1)]
    frac = [namer.sym(f"frac{k}", rf"\rho_{{{k}}}", positive=True) for k in range(1, L + 1)]
    der = _Derivation(s, namer, _first_order_cov(namer))
    generic, template = _group_template(s, der)
    keys = _group_overlaps(s)[:len(template)]   # the states' overlaps: r, q
    states, layout, rhs = [], [], []
    for k in range(1, L + 1):
        own = _group_symbols(s, namer, k)
        sub = dict(zip(generic, own))
        states += own[2:2 + len(keys)]
        layout += [(kind, k, a, b) for kind, a, b in keys]
        rhs += [_rename(e, sub) for e in template]
    eps = _simplify(der.eps_g(), der.inline)
    first = []
    for kind, mkind, pairs in (("Q", "q", _pairs(s.K)), ("R", "r", [(i, n) for i in range(1, s.K + 1) for n in range(1, s.M + 1)]),
                               ("T", "t", _pairs(s.M))):
        for a, b in pairs:  # one Add of L terms: repeated sum() would be quadratic in L
            terms = [lam[k - 1] * namer.mode_param(mkind, k, a, b) for k in range(1, L + 1)]
            first.append((namer.order_param(kind, 1, a, b), sp.Add(*terms)))
    teacher = [namer.mode_param("t", k, n, m) for k in range(1, L + 1) for n, m in _pairs(s.M)]
    per = len(_pairs(s.M))   # params: eta, lam_1..L, frac_1..L, then each group's teacher overlaps
    groups = tuple((k, L + k, *range(1 + 2 * L + per * (k - 1), 1 + 2 * L + per * k)) for k in range(1, L + 1))
    return ODESystem(
        title=_model_title(s, "eigenmode"), basis="mode", orders=tuple(range(1, L + 1)),
        states=tuple(states), layout=tuple(layout), params=(ETA, *lam, *frac, *teacher),
        intermediates=tuple(first) + der.intermediates(), rhs=tuple(rhs), eps_g=eps, relations=(),
        latex_names=tuple(namer.latex.items()) + ((ETA, r"\eta"),),
        notes=("eigenmode basis: one block of overlaps per eigenvalue group k = 1..L",), groups=groups)


def basis_map(structure):
    """Substitutions expressing the moment basis through the eigenmode basis:
    X^(l) = sum_k lambda_k^l x^k, c_j from prod_k (z - lambda_k), tau_k = sum_k rho_k lambda_k^k."""
    s = structure
    namer = _Namer()
    L = s.L
    lam = [namer.sym(f"lam{k}", rf"\lambda_{{{k}}}", positive=True) for k in range(1, L + 1)]
    frac = [namer.sym(f"frac{k}", rf"\rho_{{{k}}}", positive=True) for k in range(1, L + 1)]
    z = sp.Symbol("z")
    poly = sp.Poly(sp.Mul(*[z - lk for lk in lam]), z)
    sub = {namer.sym(f"c{j}", f"c_{{{j}}}"): poly.coeff_monomial(z ** j) for j in range(L)}
    for k in range(2, L + 2):
        sub[namer.sym(f"tau{k}", rf"\tau_{{{k}}}")] = sum(f * lk ** k for f, lk in zip(frac, lam))
    for l in range(1, L + 1):
        for kind, mkind, pairs in (("Q", "q", _pairs(s.K)), ("R", "r", [(i, n) for i in range(1, s.K + 1) for n in range(1, s.M + 1)]),
                                   ("T", "t", _pairs(s.M))):
            for a, b in pairs:
                sub[namer.order_param(kind, l, a, b)] = sum(lam[k - 1] ** l * namer.mode_param(mkind, k, a, b) for k in range(1, L + 1))
    return sub
