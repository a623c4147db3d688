"""Exported code of a derived system: a Python module, a C99 file, a Julia file (issue #18).

Each file evaluates the right-hand side and eps_g through sympy's code printers.  The intermediates
and the common subexpressions sympy.cse finds become assignments in dependency order, each function
computing only what it needs.  Constants stay exact: rationals as ratios (Python ``1/3``, C and
Julia ``1.0/3.0``), pi and sqrt(2) as each language writes them; a float or another named constant
in an expression is refused rather than printed as a truncated decimal.
"""
import textwrap

import sympy as sp
from sympy.printing.c import C99CodePrinter
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.julia import JuliaCodePrinter
from sympy.printing.pycode import PythonCodePrinter

from ..errors import ExactdynError
from .render import register_format

# Names the generated functions and their languages use; a system name must not shadow one.
_RESERVED = {"t", "y", "p", "dy", "u", "du", "math", "pi", "nothing", "end", "function", "return"}
# Functions Julia takes from SpecialFunctions.jl rather than Base.
_JULIA_SPECIAL = ("erf", "erfc", "erfi", "erfinv", "erfcinv", "gamma", "digamma", "trigamma", "polygamma",
                  "beta", "besselj", "bessely", "besseli", "besselk", "airyai", "airybi")


class _JuliaPrinter(JuliaCodePrinter):
    """Rationals as ratios of doubles: Julia's ``1 // 3`` is Int64 arithmetic that can overflow."""

    def _print_Rational(self, expr):
        return f"{expr.p}.0/{expr.q}.0"


def _program(system, outputs):
    """(assignments, outputs): the intermediates and shared subexpressions `outputs` need, in order."""
    names = [s for s, _ in system.intermediates]
    fresh = sp.numbered_symbols("w", exclude={*system.states, *system.params, *names})
    replaced, reduced = sp.cse([e for _, e in system.intermediates] + list(outputs), symbols=fresh)
    definitions = dict(replaced)
    definitions.update(zip(names, reduced[:len(names)]))
    outputs = reduced[len(names):]
    return [(s, definitions[s]) for s in _ordered(definitions, outputs)], outputs


def _ordered(definitions, outputs):
    """The symbols `outputs` need, each after those it uses, otherwise in the order of `definitions`."""
    rank = {s: i for i, s in enumerate(definitions)}
    needs = {s: sorted(e.free_symbols & rank.keys(), key=rank.get) for s, e in definitions.items()}
    wanted, todo = set(), [s for e in outputs for s in e.free_symbols if s in rank]
    while todo:
        s = todo.pop()
        if s not in wanted:
            wanted.add(s)
            todo += needs[s]
    order, done = [], set()
    for root in sorted(wanted, key=rank.get):
        stack = [root]  # depth first without recursion: chains of subexpressions can be long
        while stack:
            pending = [d for d in needs[stack[-1]] if d not in done]
            if pending:
                stack += pending[::-1]
                continue
            s = stack.pop()
            if s not in done:
                done.add(s)
                order.append(s)
    return order


def _check_names(system):
    for s in (*system.states, *system.params, *(s for s, _ in system.intermediates)):
        if not str(s).isidentifier() or str(s) in _RESERVED:
            raise ExactdynError(f"cannot export the symbol {str(s)!r}: not a plain identifier, or one the code uses")


def _show(printer, language):
    def show(expr):
        inexact = expr.atoms(sp.Float) | (expr.atoms(sp.NumberSymbol) - {sp.pi})
        if inexact:
            raise ExactdynError(f"no exact {language} form for {sorted(map(str, inexact))}")
        unevaluated = sorted({type(f).__name__ for f in expr.atoms(sp.core.function.AppliedUndef, sp.Function)
                              if not hasattr(sp, type(f).__name__)})
        if unevaluated:
            raise ExactdynError(f"{language} export needs closed-form expectations; {', '.join(unevaluated)} "
                                "is evaluated by quadrature (tanh, sigmoid), which exported code does not carry")
        try:
            return printer.doprint(expr)
        except PrintMethodNotImplementedError as err:
            raise ExactdynError(f"{language} export: {str(err).splitlines()[0]}") from None
    return show


def _statements(system, outputs, show, load, assign):
    """The lines of one function (load what it uses, then assign in order) and its printed outputs."""
    assignments, outputs = _program(system, outputs)
    used = set().union(*(e.free_symbols for _, e in assignments), *(e.free_symbols for e in outputs))
    lines = [load(vector, i, s) for vector, names in (("y", system.states), ("p", system.params))
             for i, s in enumerate(names) if s in used]
    lines += [assign(s, show(e)) for s, e in assignments]
    return lines, [show(e) for e in outputs]


def _listed(names, quote, indent):
    """Names as quoted, comma-separated items wrapped at 100 characters."""
    text = ", ".join(f"{quote}{s}{quote}" for s in names)
    return textwrap.fill(text, 100, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


def _header(system, fmt):
    # No version in the text: importing the package root would put every module in the cache key.
    return [f"{system.title}: exported by `exactdyn derive --format {fmt}`;",
            "regenerate it rather than editing it.", *system.notes]


def python_code(system, structure):
    """A standalone module: STATE_NAMES, PARAM_NAMES, rhs(t, y, p) for solve_ivp(..., args=(p,)), eps_g(y, p)."""
    _check_names(system)
    printer = PythonCodePrinter({"fully_qualified_modules": True, "strict": True})
    show, pad = _show(printer, "Python"), " " * 4
    load = lambda vector, i, s: f"{pad}{s} = {vector}[{i}]"
    assign = lambda s, text: f"{pad}{s} = {text}"
    rhs_lines, rhs_out = _statements(system, system.rhs, show, load, assign)
    eps_lines, (eps_out,) = _statements(system, (system.eps_g,), show, load, assign)
    imports = [f"import {module}" for module in sorted(printer.module_imports)]
    return "\n".join([
        '"""' + "\n".join(_header(system, "python")), '"""', *imports, "",
        "STATE_NAMES = (", _listed(system.states, '"', pad) + ",", ")",
        "PARAM_NAMES = (", _listed(system.params, '"', pad) + ",", ")", "", "",
        "def rhs(t, y, p):",
        f'{pad}"""d(state)/d(alpha), states y in STATE_NAMES order, parameters p in PARAM_NAMES order."""',
        *rhs_lines, f"{pad}return [",
        *(f"{pad * 2}{text},  # {s}" for s, text in zip(system.states, rhs_out)), f"{pad}]", "", "",
        "def eps_g(y, p):", f'{pad}"""The generalisation error at state y."""', *eps_lines,
        f"{pad}return {eps_out}", ""])


def c_code(system, structure):
    """A standalone C99 file: exactdyn_rhs(y, p, dy), exactdyn_eps_g(y, p) and the name arrays."""
    _check_names(system)
    printer = C99CodePrinter({"strict": True, "math_macros": {sp.pi: "M_PI"}})
    show, pad = _show(printer, "C"), " " * 4
    load = lambda vector, i, s: f"{pad}const double {s} = {vector}[{i}];"
    assign = lambda s, text: f"{pad}const double {s} = {text};"
    rhs_lines, rhs_out = _statements(system, system.rhs, show, load, assign)
    eps_lines, (eps_out,) = _statements(system, (system.eps_g,), show, load, assign)
    n, m = len(system.states), len(system.params)
    return "\n".join([
        "/*", *(f" * {line}" for line in _header(system, "c")),
        " * y: the states in the order of exactdyn_state_names; p: the parameters in the order of",
        " * exactdyn_param_names.  Build: cc -O2 -shared -fPIC this.c -o this.so -lm", " */",
        "#include <math.h>", "",
        "/* M_PI is POSIX, not C99; the compiler folds acos(-1.0) to pi correctly rounded. */",
        "#ifndef M_PI", "#define M_PI acos(-1.0)", "#endif", "",
        f"const int exactdyn_n_states = {n};", f"const int exactdyn_n_params = {m};",
        f"const char *const exactdyn_state_names[{n}] = {{", _listed(system.states, '"', pad), "};",
        f"const char *const exactdyn_param_names[{m}] = {{", _listed(system.params, '"', pad), "};", "",
        "void exactdyn_rhs(const double *y, const double *p, double *dy)", "{", *rhs_lines,
        *(f"{pad}dy[{i}] = {text};  /* {s} */" for i, (s, text) in enumerate(zip(system.states, rhs_out))),
        "}", "",
        "double exactdyn_eps_g(const double *y, const double *p)", "{", *eps_lines, f"{pad}return {eps_out};",
        "}", ""])


def julia_code(system, structure):
    """A Julia file: STATE_NAMES, PARAM_NAMES, rhs!(du, u, p, t) for DifferentialEquations.jl, eps_g(u, p)."""
    _check_names(system)
    show, pad = _show(_JuliaPrinter({"strict": True}), "Julia"), " " * 4
    load = lambda vector, i, s: f"{pad}{s} = {'u' if vector == 'y' else 'p'}[{i + 1}]"
    assign = lambda s, text: f"{pad}{s} = {text}"
    rhs_lines, rhs_out = _statements(system, system.rhs, show, load, assign)
    eps_lines, (eps_out,) = _statements(system, (system.eps_g,), show, load, assign)
    used = {type(f).__name__ for e in (*system.rhs, system.eps_g, *(v for _, v in system.intermediates))
            for f in e.atoms(sp.Function)}
    special = [f for f in _JULIA_SPECIAL if f in used]
    return "\n".join([
        *(f"# {line}" for line in _header(system, "julia")),
        "# u: the states in STATE_NAMES order; p: the parameters in PARAM_NAMES order.",
        "# ODEProblem(rhs!, u0, (0.0, alpha_max), p) integrates it in alpha.", "",
        *([f"using SpecialFunctions: {', '.join(special)}", ""] if special else []),
        "const STATE_NAMES = [", _listed(system.states, '"', pad), "]",
        "const PARAM_NAMES = [", _listed(system.params, '"', pad), "]", "",
        "function rhs!(du, u, p, t)", *rhs_lines,
        *(f"{pad}du[{i + 1}] = {text}  # {s}" for i, (s, text) in enumerate(zip(system.states, rhs_out))),
        f"{pad}return nothing", "end", "",
        "function eps_g(u, p)", *eps_lines, f"{pad}return {eps_out}", "end", ""])


register_format("python", python_code)
register_format("c", c_code)
register_format("julia", julia_code)
