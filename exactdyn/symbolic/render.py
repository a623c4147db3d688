"""Printing derived systems: LaTeX (a printer subclass and a standalone document), text, JSON."""
import json

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..errors import ExactdynError
from .expectations import Polynomial, slot_covariance
from .hierarchy import derive_general_order

_LINE_CHARS = 180


class ExactdynLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer with exactdyn's symbol names (R^{(l)}_{in}, <g'(x_i) g(y_n)>, ...)."""

    def __init__(self, names, settings=None):
        super().__init__(settings)
        self._names = names

    def _print_Symbol(self, expr, style="plain"):
        if expr in self._names:
            return self._names[expr]
        return super()._print_Symbol(expr, style)


def latex(expr, names):
    return ExactdynLatexPrinter(names).doprint(expr)


def _terms(expr):
    expr = sp.expand(expr)
    return expr.as_ordered_terms() if isinstance(expr, sp.Add) else [expr]


def _broken_equation(lhs, expr, names):
    """An align* row, broken into lines of about _LINE_CHARS characters at top-level terms."""
    lines, current = [], ""
    for term in _terms(expr):
        text = latex(term, names)
        piece = text if not current and not lines else (text if text.startswith("-") else "+ " + text)
        if current and len(current) + len(piece) > _LINE_CHARS:
            lines.append(current)
            current = piece
        else:
            current = f"{current} {piece}".strip()
    lines.append(current or "0")
    body = " \\\\\n  &\\quad ".join(lines)
    return f"{lhs} &= {body}"


def _escape(text):
    return text.replace("_", r"\_").replace("^", r"\^{}").replace("%", r"\%")


def _expectation_legend(activation):
    """Closed forms of the expectation patterns over generic slots u_1..u_n with covariance C_ab."""
    names = {}
    for n in range(1, 5):
        C = slot_covariance(n)
        for a in range(n):
            for b in range(a, n):
                names[C[a, b]] = f"C_{{{a + 1}{b + 1}}}"
    rows = []
    for derivs, expr in activation.legend():
        slots = r"\, ".join(("g" + "'" * d) + f"(u_{a + 1})" for a, d in enumerate(derivs))
        rows.append(rf"\langle {slots} \rangle &= {latex(expr, names)}")
    return rows


def latex_document(system, structure):
    """A standalone LaTeX document (compiles with pdflatex) for a derived system."""
    names = system.latex_name_map()
    act = structure.activation
    out = [r"\documentclass[10pt]{article}", r"\usepackage[margin=1.5cm,landscape]{geometry}",
           r"\usepackage{amsmath,amssymb}", r"\allowdisplaybreaks", r"\begin{document}",
           rf"\section*{{{_escape(system.title)}}}"]
    out.append(
        r"One-pass SGD $J_i \leftarrow J_i + \frac{\eta}{\sqrt N}\,\delta_i\,\xi$ on the loss "
        rf"${sp.latex(structure.loss_factor)}(\sigma-\zeta)^2$, $\sigma=\sum_i v_i g(x_i)$, $\zeta=\sum_n w_n g(y_n)$, "
        rf"$v_i = {sp.latex(_weight(structure.output_weights, structure.K))}$, "
        rf"$w_n = {sp.latex(_weight(structure.teacher_output_weights, structure.M))}$, "
        rf"$g(x) = {sp.latex(act.g(sp.Symbol('x')))}$. "
        r"Time $\alpha = \mu/N$. Notes: " + "; ".join(_escape(n) for n in system.notes) + ".")
    if not isinstance(act, Polynomial):
        out.append(r"\subsection*{Gaussian expectations (derived)}")
        out.append(r"Over zero-mean jointly Gaussian $u_1,\dots,u_4$ with covariance $C_{ab}$; in the "
                   r"equations the slots are the fields $x_i, y_n$ with "
                   r"$\langle x_i x_k\rangle = Q^{(1)}_{ik}$, $\langle x_i y_n\rangle = R^{(1)}_{in}$, "
                   r"$\langle y_n y_m\rangle = T^{(1)}_{nm}$.")
        out.append(r"\begin{align*}" + " \\\\\n".join(_expectation_legend(act)) + r"\end{align*}")
        if act.legend_note:
            out.append(act.legend_note)
    general, _, gnames = derive_general_order(structure)
    out.append(r"\subsection*{Order $l$ (general form)}")
    out.append(r"\begin{align*}" + " \\\\\n".join(
        _broken_equation(rf"\frac{{d {gnames[s]}}}{{d\alpha}}", e, gnames) for s, e in general) + r"\end{align*}")
    if system.relations:
        out.append(r"\subsection*{Closure (Cayley--Hamilton)}")
        out.append(r"\begin{align*}" + " \\\\\n".join(
            _broken_equation(names[s], e, names) for s, e in system.relations) + r"\end{align*}")
    out.append(rf"\subsection*{{Closed system ({len(system.states)} equations)}}")
    out.append(r"\begin{align*}" + " \\\\\n".join(
        _broken_equation(rf"\frac{{d {names[s]}}}{{d\alpha}}", e, names) for s, e in zip(system.states, system.rhs))
        + r"\end{align*}")
    out.append(r"\subsection*{Generalisation error}")
    out.append(r"\begin{align*}" + _broken_equation(r"\epsilon_g", system.eps_g, names) + r"\end{align*}")
    if isinstance(act, Polynomial) and act.name == "linear" and structure.K == structure.M == 1:
        out += _linear_section(structure.L, names)
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


def _weight(convention, width):
    from .conventions import output_weight
    return output_weight(convention, width)


def text_form(system):
    lines = [system.title, *system.notes, ""]
    if system.intermediates:
        lines.append("where")
        lines += [f"  {s} = {e}" for s, e in system.intermediates]
        lines.append("")
    if system.relations:
        lines.append("closure")
        lines += [f"  {s} = {e}" for s, e in system.relations]
        lines.append("")
    lines += [f"d{s}/dalpha = {e}" for s, e in zip(system.states, system.rhs)]
    lines.append(f"eps_g = {system.eps_g}")
    return "\n".join(lines) + "\n"


def json_form(system):
    """Expressions as sympy's plain strings: + - * / **, sqrt, asin, pi; names as in `states`/`params`."""
    return json.dumps({
        "title": system.title,
        "basis": system.basis,
        "orders": list(system.orders),
        "notes": list(system.notes),
        "states": [str(s) for s in system.states],
        "layout": [list(x) for x in system.layout],
        "params": [str(p) for p in system.params],
        "intermediates": [[str(s), str(e)] for s, e in system.intermediates],
        "rhs": {str(s): str(e) for s, e in zip(system.states, system.rhs)},
        "eps_g": str(system.eps_g),
        "closure": [[str(s), str(e)] for s, e in system.relations],
        "latex_names": {str(s): t for s, t in system.latex_names},
    }, indent=1)


def _linear_section(L, names):
    from .linear import derive_linear

    h = derive_linear(L)
    names = {**names, **{d: f"D^{{({l + 1})}}" for l, d in enumerate(h.D)}, h.u: "u"}
    mat = lambda m: latex(m, names)
    rows = [r"\subsection*{Linear network: error hierarchy}",
            r"With $D^{(l)} = Q^{(l)} - 2R^{(l)} + T^{(l)}$ the system closes in $D$: "
            r"$\frac{dD}{d\alpha} = A D$, $A = -2\eta S + \eta^2\, t\, e_1^{\top}$,",
            r"\begin{align*}",
            rf"A &= {mat(h.matrix)}, & S &= {mat(h.companion)}, & t\,e_1^\top &= {mat(h.rank_one)}.",
            r"\end{align*}",
            r"$S$ has eigenvalues $\lambda_k$ with eigenvectors $(1, \lambda_k, \dots, \lambda_k^{L-1})$. "
            r"The eigenvalues of $A$ are $z = -2\eta u$ with $u$ the roots of "
            r"$u^L + \sum_j \tilde c_j u^j$, the shifted coefficients being",
            r"\begin{align*}"]
    rows.append(" \\\\\n".join(rf"\tilde c_{{{j}}} &= {latex(c, names)}" for j, c in enumerate(h.shifted)))
    rows += [r"\end{align*}",
             r"in general $\tilde c_i = c_i + \frac{\eta}{2}\sum_{j=i+1}^{L} c_j\,\tau_{j+1-i}$ ($c_L = 1$); "
             r"the eigenvector at a root is $D^{(l)} = u^{l-1} + \frac{\eta}{2}\sum_{m=2}^{l}\tau_m u^{l-m}$."]
    return rows


# Output formats of a derived system: name -> writer(system, structure) -> text.  The CLI's
# `derive --format` choices come from here; a code printer registers itself the same way.
_FORMATS = {
    "latex": latex_document,
    "text": lambda system, structure: text_form(system),
    "json": lambda system, structure: json_form(system) + "\n",
}


def register_format(name, writer):
    """Add an output format: ``writer(system, structure)`` returns the whole text."""
    if not isinstance(name, str) or not name.isidentifier() or not callable(writer):
        raise ExactdynError(f"a format needs an identifier name and a callable writer, got {name!r}")
    _FORMATS[name] = writer


def format_names():
    return tuple(_FORMATS)


def render(system, structure, fmt):
    if fmt not in _FORMATS:
        raise ExactdynError(f"unknown format {fmt!r}: choose {', '.join(_FORMATS)}")
    return _FORMATS[fmt](system, structure)


# The code printers (python, c, julia) register themselves; imported last, as they import this module.
from . import export  # noqa: E402,F401
