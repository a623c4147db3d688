"""Text and JSON reports of `exactdyn spectrum` and `exactdyn landscape`."""
import json

import flint
import sympy as sp

from ..numbers import certified_decimal, fmpq_str, to_fraction


def spectrum_data(spectrum, digits, kmax):
    """Eigenvalues, weights, c_0..c_{L-1} and tau_1..tau_kmax as strings: exact 'p/q', or the
    certified digits of a ball."""
    fmt = lambda x: fmpq_str(x) if isinstance(x, flint.fmpq) else certified_decimal(x, digits)
    return {"label": spectrum.label, "L": spectrum.L, "exact": spectrum.exact,
            "eigenvalues": [fmt(x) for x in spectrum.eigenvalues], "weights": [fmt(x) for x in spectrum.weights],
            "coefficients": [fmt(x) for x in spectrum.coefficients()], "traces": [fmt(x) for x in spectrum.traces(kmax)]}


def _short(text):
    """A readable approximation of an exact 'p/q' string for the text table."""
    return f"~{float(to_fraction(text)):.10g}" if "/" in text else text


def write_spectrum(out, spectrum, digits, kmax, fmt):
    data = spectrum_data(spectrum, digits, kmax)
    if fmt == "json":
        out.write(json.dumps(data, indent=1) + "\n")
        return
    out.write(f"{spectrum.label} ({'exact rationals' if spectrum.exact else f'{digits} certified digits'})\n")
    out.write(f"{'l':>5}  {'lambda_l':<30} {'c_(l-1)':<30} {'tau_l':<30}\n")
    cell = lambda key, i: _short(data[key][i]) if i < len(data[key]) else ""
    for i in range(max(spectrum.L, kmax)):
        out.write(f"{i + 1:>5}  {cell('eigenvalues', i):<30} {cell('coefficients', i):<30} {cell('traces', i):<30}\n")
    out.write("(c_j is the coefficient of z^j in prod_l (z - lambda_l); exact values: --format json)\n")


def _landscape_json(rows):
    return [{"class": c.cls.name, "form": c.cls.description, "gradient_max": c.gradient_norm,
             "eigenvalues": [{"exact": None if m.exact is None else sp.sstr(m.exact), "value": m.value,
                              "multiplicity": m.multiplicity, "numerical": m.numerical,
                              "numerical_multiplicity": m.numerical_multiplicity} for m in matched]}
            for c, matched in rows]


def _eigenvalue_line(m):
    left = f"{sp.sstr(m.exact):<24}{m.multiplicity:>6}" if m.exact is not None else f"{'-':<24}{0:>6}"
    nv = m.numerical
    right = f"{(0.0 if abs(nv) < 1e-12 else nv):>14.8f}{m.numerical_multiplicity:>6}" if nv is not None \
        else f"{'-':>14}{0:>6}"
    return f"  {left}   {right}{'' if m.agrees else '   <-- mismatch'}\n"


def write_landscape(out, classes, p, pstar, n, fmt):
    """Each stationary class's analytic Hessian eigenvalues next to the numerical ones
    (exactdyn.models.quadratic.landscape, matched by match_spectrum)."""
    from ..models.quadratic import index_counts, match_spectrum

    rows = [(c, match_spectrum(c)) for c in classes]
    if fmt == "json":
        out.write(json.dumps(_landscape_json(rows), indent=1) + "\n")
        return
    out.write(f"quadratic network p = {p}, p* = {pstar}, N = {n}: population-risk Hessian ({p * n} x {p * n}) at "
              "each stationary class\nanalytic: exact, reduced to dimension p + p* plus the bulk; numerical: "
              "numpy eigvalsh at a randomly rotated copy\n")
    for c, matched in rows:
        out.write(f"\n{c.cls.name}: {c.cls.description}   (largest |gradient| {c.gradient_norm:.1e})\n")
        out.write(f"  {'eigenvalue (analytic)':<24}{'mult':>6}   {'numerical':>14}{'mult':>6}\n")
        out.write("".join(_eigenvalue_line(m) for m in matched))
        out.write("  negative {}, null {}, positive {}\n".format(*index_counts(matched)))
