"""Command line: a thin shell over the library.  Bad input: one line on stderr, exit status 2."""
import argparse
from fractions import Fraction
import json
import math
import numpy as np
import sys

from .errors import ExactdynError
from .numbers import certified_decimal, fmpq_str, to_fraction

DEFAULT_DIGITS = 30


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ExactdynError(message)


# --- argument readers -----------------------------------------------------------------------

def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def number(text):
    try:
        return to_fraction(text)
    except ExactdynError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def number_list(text):
    parts = [p for p in text.split(",")]
    if not parts or any(not p.strip() for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return [number(p) for p in parts]


# --- spectrum -------------------------------------------------------------------------------

def _spectrum_from_args(args, digits):
    from .numbers import bits_for_digits
    from .spectrum import from_eigenvalues, power_law

    if args.eigenvalues is not None:
        if args.L is not None or args.beta is not None:
            raise ExactdynError("give either --eigenvalues or --L/--beta, not both")
        return from_eigenvalues(args.eigenvalues, args.weights)
    if args.weights is not None:
        raise ExactdynError("--weights goes with --eigenvalues")
    if args.L is None:
        raise ExactdynError("give --L (and --beta) or --eigenvalues")
    beta = args.beta if args.beta is not None else 1
    # Balls lose about log2(L) bits a power: budget for tau_{L+1} up front, the formatter checks.
    return power_law(args.L, beta, prec=bits_for_digits(digits) + 2 * args.L.bit_length() * 8)


def _fmt(x, digits):
    import flint
    return fmpq_str(x) if isinstance(x, flint.fmpq) else certified_decimal(x, digits)


def cmd_spectrum(args, out):
    digits = args.digits
    spec = _spectrum_from_args(args, digits)
    kmax = args.traces if args.traces is not None else spec.L + 1
    data = {
        "label": spec.label,
        "L": spec.L,
        "exact": spec.exact,
        "eigenvalues": [_fmt(x, digits) for x in spec.eigenvalues],
        "weights": [_fmt(x, digits) for x in spec.weights],
        "coefficients": [_fmt(x, digits) for x in spec.coefficients()],
        "traces": [_fmt(x, digits) for x in spec.traces(kmax)],
    }
    if args.format == "json":
        out.write(json.dumps(data, indent=1) + "\n")
        return 0
    out.write(f"{spec.label} ({'exact rationals' if spec.exact else f'{digits} certified digits'})\n")
    out.write(f"{'l':>5}  {'lambda_l':<30} {'c_(l-1)':<30} {'tau_l':<30}\n")
    rows = max(spec.L, kmax)
    for i in range(rows):
        cell = lambda seq: seq[i] if i < len(seq) else ""
        out.write(f"{i + 1:>5}  {_short(cell(data['eigenvalues'])):<30} {_short(cell(data['coefficients'])):<30} "
                  f"{_short(cell(data['traces'])):<30}\n")
    out.write("(c_j is the coefficient of z^j in prod_l (z - lambda_l); exact values: --format json)\n")
    return 0


def _short(text):
    """A readable approximation of an exact 'p/q' string for the text table."""
    if "/" not in text:
        return text
    from fractions import Fraction
    p, q = text.split("/")
    value = Fraction(int(p), int(q))
    import mpmath
    with mpmath.workdps(12):
        return "~" + mpmath.nstr(mpmath.mpf(value.numerator) / value.denominator, 10)


# --- derive ---------------------------------------------------------------------------------

def _structure_from_args(args):
    from .symbolic.expectations import Polynomial
    from .symbolic.hierarchy import Structure

    activation = Polynomial(tuple(args.poly)) if args.poly is not None else args.activation
    return Structure.named(activation, args.K, args.M, args.L, args.output_weights, args.loss_factor)


def cmd_derive(args, out):
    from .symbolic.cache import derive
    from .symbolic.render import json_form, latex_document, text_form

    structure = _structure_from_args(args)
    system = derive(structure, args.basis, use_cache=not args.no_cache)
    if args.format == "latex":
        out.write(latex_document(system, structure))
    elif args.format == "json":
        out.write(json_form(system) + "\n")
    else:
        out.write(text_form(system))
    return 0


# --- solve ---------------------------------------------------------------------------------

def nonnegative_list(text):
    values = number_list(text)
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"alpha must be >= 0, got {text!r}")
    return values


def cmd_solve(args, out):
    if args.activation != "linear":
        return _solve_committee(args, out)
    if args.digits is None:
        args.digits = DEFAULT_DIGITS
    from .numeric.linear import solve_linear

    initial = None
    if args.init is not None:
        from .io.initfile import read_initial

        if args.L is not None or args.beta is not None or args.eigenvalues is not None:
            raise ExactdynError("--init defines the spectrum: leave out --L, --beta and --eigenvalues")
        init = read_initial(args.init)
        if init.K != 1 or init.M != 1:
            raise ExactdynError("the linear solver takes K = M = 1 overlaps (a wider linear network is one "
                                "effective unit)")
        spectrum = init.spectrum
        initial = [q[0][0] - 2 * r[0][0] + t[0][0] for r, q, t in zip(init.r, init.q, init.t)]
    else:
        spectrum = _spectrum_from_args(args, args.digits)
    if args.random_subspace is not None:
        return _solve_random_subspace(args, out, spectrum)
    if args.N is not None:
        raise ExactdynError("--N goes with --random-subspace for linear networks")
    sol = solve_linear(spectrum, args.eta, args.alpha, sigma_J=args.sigma_J, initial=initial,
                       digits=args.digits, route=args.route, trainable=args.trainable)
    eps = sol.decimals()
    from .numbers import working_precision

    with working_precision(sol.bits):
        limit = certified_decimal(sol.stability_limit, min(args.digits, 15))
    if sol.status != "ok":
        print(f"exactdyn: warning: eta = {args.eta} is past the stability limit {limit}: the error grows",
              file=sys.stderr)
    meta = {"activation": "linear", "L": spectrum.L, "spectrum": spectrum.label, "eta": str(args.eta),
            "sigma_J": str(args.sigma_J), "route": sol.route, "working_precision_bits": sol.bits,
            "digits": sol.digits, "stability_limit": limit, "stable": sol.status == "ok", "status": sol.status,
            "seconds": round(sol.seconds, 3)}
    if args.trainable is not None:
        with working_precision(sol.bits):
            meta["trainable"] = args.trainable
            meta["eps_g_limit"] = certified_decimal(sol.plateau, args.digits) if not sol.plateau.is_zero() else "0"
    alpha = [str(a) for a in sol.alpha]
    extra = _approximations(args, spectrum, sol, initial) if args.approximations else {}
    meta.update(extra)
    _write_curve(out, args.format, alpha, eps, meta, f"{args.digits} certified digits")
    if args.plot:
        from .io.plotting import plot_curves

        plot_curves([("exact (linear, %s route)" % sol.route, sol.alpha, sol.eps_g)], args.plot,
                    title=f"linear network, {spectrum.label}, eta = {args.eta}")
    return 0


def _solve_random_subspace(args, out, spectrum):
    """Linear student trainable in Haar-random subspaces: the mean of the exact per-draw curves, with
    as many digits as the spread over draws allows (at most 8: each draw is exact for its float64
    eigenpairs)."""
    import mpmath

    from .numeric.linear import random_basis_curve, random_subspace_limit

    if args.N is None:
        raise ExactdynError("--random-subspace needs --N, the input dimension of the drawn subspaces")
    if args.init is not None or args.trainable is not None or args.route != "mode" or args.approximations:
        raise ExactdynError("--random-subspace goes without --init, --trainable, --route moment and --approximations")
    draws = range(args.seed, args.seed + args.draws)
    curve = random_basis_curve(spectrum, args.random_subspace, args.eta, args.alpha, N=args.N, draws=draws,
                               sigma_J=args.sigma_J)
    stderr = [s / math.sqrt(args.draws) for s in curve.spread] if args.draws > 1 else None
    digits = lambda m, s: 8 if not s else max(1, min(8, int(math.floor(math.log10(abs(m) / s))) + 1))
    eps = [f"{m:.{digits(m, s)}g}" for m, s in zip(curve.eps_g, stderr or [0] * len(curve.eps_g))]
    limit = random_subspace_limit(spectrum, args.random_subspace, sigma_J=args.sigma_J, digits=10)
    meta = {"activation": "linear", "L": spectrum.L, "spectrum": spectrum.label, "eta": str(args.eta),
            "sigma_J": str(args.sigma_J), "random_subspace": str(args.random_subspace), "N": args.N,
            "trainable_dimension": curve.trainable, "draws": args.draws,
            "eps_g_stderr": [f"{s:.2g}" for s in stderr] if stderr else None,
            "eps_g_limit_per_draw": [f"{x:.8g}" for x in curve.limits],
            "eps_g_limit_N_infinity_small_eta": mpmath.nstr(limit, 10)}
    _write_curve(out, args.format, [str(a) for a in curve.alpha], eps, meta,
                 "mean over drawn subspaces, digits the spread allows")
    if args.plot:
        from .io.plotting import plot_curves

        plot_curves([(f"random subspace {args.random_subspace}, N = {args.N}", curve.alpha, curve.eps_g)], args.plot,
                    title=f"linear network, {spectrum.label}, eta = {args.eta}")
    return 0


def _write_curve(out, fmt, alpha, eps, meta, digits_label, extra_json=()):
    """The shared output of `solve`: JSON (alpha, eps_g, metadata), CSV, or a readable table."""
    if fmt == "json":
        out.write(json.dumps({"alpha": alpha, "eps_g": eps, "metadata": meta, **dict(extra_json)}, indent=1) + "\n")
    elif fmt == "csv":
        out.write("alpha,eps_g\n" + "".join(f"{a},{e}\n" for a, e in zip(alpha, eps)))
    else:
        out.write("".join(f"# {k}: {v}\n" for k, v in meta.items()))
        out.write(f"{'alpha':>14}  eps_g ({digits_label})\n")
        out.write("".join(f"{a:>14}  {e}\n" for a, e in zip(alpha, eps)))


def _committee_initial(args, model):
    """(initial state, init file or None, spectrum or None) from --init, --N/--seed or the expected values."""
    from .numeric import committee

    init = spectrum = None
    if args.init is not None:
        from .io.initfile import read_initial

        if args.L is not None or args.beta is not None or args.eigenvalues is not None or args.N is not None:
            raise ExactdynError("--init defines the spectrum and the state: leave out --L, --beta, --eigenvalues, --N")
        init = read_initial(args.init)
        if (init.K, init.M) != (model.K, model.M):
            raise ExactdynError(f"the file's overlaps are {init.K} x {init.M}, --K/--M say {model.K} x {model.M}")
        return committee.from_file(init), init, spectrum
    spectrum = _spectrum_from_args(args, 17)
    lam, frac = spectrum.floats()
    sigma = float(args.sigma_J)
    if args.N is not None:
        return committee.finite_n_initial(lam, frac, model.K, model.M, args.N, args.seed, sigma), init, spectrum
    return committee.expected_initial(lam, frac, model.K, model.M, sigma, seed=args.seed), init, spectrum


def _solve_committee(args, out):
    """Nonlinear activations: float64 eigenmode integration, digits verified at a tighter tolerance."""
    from .numeric import committee
    from .symbolic.hierarchy import Structure

    if args.route != "mode" or args.trainable is not None or args.approximations:
        raise ExactdynError("--route moment, --trainable and --approximations are for linear networks")
    model = Structure.named(args.activation, args.K, args.M, 1, args.output_weights)
    initial, init, spectrum = _committee_initial(args, model)
    structure = Structure.named(model.activation, model.K, model.M, initial[5], model.output_weights,
                                model.loss_factor)
    if args.digits is not None:
        exact_spectrum = init.spectrum if args.init is not None else spectrum
        if not exact_spectrum.exact:
            raise ExactdynError("--digits (the high-precision path) needs an exact spectrum: whole-number --beta, "
                                "--eigenvalues or --init")
        if args.init is not None:
            initial = (*initial[:2], init.r, init.q, init.t, initial[5])
        exact = (list(exact_spectrum.eigenvalues), list(exact_spectrum.weights), *initial[2:])
        return _solve_committee_high_precision(args, out, structure, exact)
    traj = committee.integrate(structure, initial, args.eta, args.alpha)
    digits = traj.verified_digits
    if digits < 1:
        raise ExactdynError("no digit of eps_g could be verified (the tolerances disagree)")
    eps = [f"{e:.{digits}g}" for e in traj.eps_g]
    alpha = [str(a) for a in args.alpha]
    meta = {"activation": args.activation, "K": model.K, "M": model.M, "L": structure.L,
            "output_weights": model.output_weights, "eta": str(args.eta), "route": "float64-mode (DOP853)",
            "verified_digits": digits, "status": traj.status, "seconds": round(traj.seconds, 3)}
    _write_curve(out, args.format, alpha, eps, meta, f"{digits} verified digits",
                 {"overlaps": list(traj.overlaps)} if args.overlaps else {})
    if args.plot:
        from .io.plotting import plot_curves

        plot_curves([(f"{args.activation}, K={model.K}, M={model.M}", traj.alpha, traj.eps_g)], args.plot,
                    title=f"{args.activation} committee machine, L={structure.L}, eta={args.eta}")
    return 0


def _solve_committee_high_precision(args, out, structure, initial):
    """Nonlinear activations at --digits: Bulirsch-Stoer at mpmath precision, verified by a second run."""
    from .numeric.highprec import integrate_mp

    traj = integrate_mp(structure, initial, args.eta, args.alpha, digits=args.digits, progress=sys.stderr.isatty())
    meta = {"activation": args.activation, "K": structure.K, "M": structure.M, "L": structure.L,
            "output_weights": structure.output_weights, "eta": str(args.eta),
            "route": "mpmath-mode (Bulirsch-Stoer)", "verified_digits": traj.digits, "working_precision_bits": traj.bits,
            "status": "ok", "seconds": round(traj.seconds, 3)}
    _write_curve(out, args.format, [str(a) for a in args.alpha], traj.decimals(), meta,
                 f"{traj.digits} verified digits")
    if args.plot:
        from .io.plotting import plot_curves

        plot_curves([(f"{args.activation}, K={structure.K}, M={structure.M}", traj.alpha, traj.eps_g)], args.plot,
                    title=f"{args.activation} committee machine, L={structure.L}, eta={args.eta}")
    return 0


def _approximations(args, spectrum, sol, initial):
    """The papers' approximations next to the exact curve, with their relative errors."""
    from .numbers import working_precision
    from .numeric.linear import integral_approximation, small_eta

    small = small_eta(spectrum, args.eta, sol.alpha, sigma_J=args.sigma_J, initial=initial)
    with working_precision(sol.bits):
        rel_small = [float(abs((s - e) / e).mid()) for s, e in zip(small, sol.eps_g)]
    result = {"small_eta": [f"{float(x.mid()):.12g}" for x in small],
              "small_eta_relative_error": [f"{x:.3g}" for x in rel_small]}
    if args.L is not None and initial is None and args.trainable is None:
        values, window = integral_approximation(spectrum.L, args.beta if args.beta is not None else 1, args.eta,
                                                sol.alpha, sigma_J=args.sigma_J)
        result["integral"] = [None if v is None else f"{float(v):.12g}" for v in values]
        result["integral_relative_error"] = [None if v is None else f"{abs(float(v) / float(e.mid()) - 1):.3g}"
                                             for v, e in zip(values, sol.eps_g)]
        result["power_law_window"] = [f"{float(window[0]):.6g}", f"{float(window[1]):.6g}"]
        result["local_exponent"] = [None if a == 0 else f"{float(sol.slope_at(a).mid()):.6g}" for a in sol.alpha]
    return result


# --- simulate ------------------------------------------------------------------------------

def cmd_simulate(args, out):
    import numpy as np

    from .symbolic.cache import derive
    from .numeric.compiled import compile_system
    from .symbolic.hierarchy import Structure
    from .numeric.overlaps import assign, overlap_table
    from .simulate.sgd import simulate

    alpha = sorted(float(a) for a in args.alpha)
    if [float(a) for a in args.alpha] != alpha:
        raise ExactdynError("--alpha must be increasing")
    if args.sigma_J < 0:
        raise ExactdynError(f"sigma_J must be >= 0, got {args.sigma_J}")
    spectrum = _spectrum_from_args(args, 17)
    lam, frac = spectrum.floats()
    structure = Structure.named(args.activation, args.K, args.M, spectrum.L, args.output_weights)
    sim = simulate(structure, lam, frac, float(args.eta), alpha, N=args.N, seeds=range(args.seed, args.seed + args.seeds),
                   sigma_J=float(args.sigma_J), init_seed=args.init_seed, progress=sys.stderr.isatty())
    system = derive(structure, "mode")
    f = compile_system(system)
    eps = np.array([[f.eps_g(*assign(system, overlap_table(lam, frac, sim.r[a, s], sim.q[a, s], sim.t[s], float(args.eta))))
                     for s in range(len(sim.seeds))] for a in range(len(alpha))])
    mean = eps.mean(1)
    stderr = eps.std(1, ddof=1) / np.sqrt(len(sim.seeds)) if len(sim.seeds) > 1 else np.full(len(alpha), np.nan)
    initial = [{"eigenvalues": lam, "weights": frac, "r": sim.r[0, s].tolist(), "q": sim.q[0, s].tolist(),
                "t": sim.t[s].tolist()} for s in range(len(sim.seeds))]
    meta = {"activation": args.activation, "K": structure.K, "M": structure.M, "L": spectrum.L, "N": args.N,
            "eta": str(args.eta), "sigma_J": str(args.sigma_J), "output_weights": structure.output_weights,
            "seeds": list(sim.seeds), "init_seed": args.init_seed}
    if args.format == "json":
        result = {"alpha": alpha, "eps_g": mean.tolist(), "eps_g_stderr": [None if np.isnan(e) else e for e in stderr],
                  "eps_g_seeds": eps.tolist(), "initial": initial, "metadata": meta}
        if args.overlaps:
            result["overlaps"] = {"r": sim.r.mean(1).tolist(), "q": sim.q.mean(1).tolist()}
        out.write(json.dumps(result, indent=1) + "\n")
    else:
        out.write("alpha,eps_g,eps_g_stderr\n" + "".join(f"{a},{float(m)!r},{float(e)!r}\n" for a, m, e in zip(alpha, mean, stderr)))
    if args.plot:
        from .io.plotting import plot_curves

        plot_curves([], args.plot, bands=[(f"SGD, N={args.N}, {len(sim.seeds)} seeds", alpha, mean, np.nan_to_num(stderr))],
                    title=f"{args.activation}, K={structure.K}, M={structure.M}, L={spectrum.L}, eta={args.eta}")
    return 0


# --- check ----------------------------------------------------------------------------------

def cmd_check(args, out):
    """Exit 0 when the trajectory is consistent with exactdyn, 1 when not, 2 for unusable input."""
    import math

    from .simulate.check import compare, format_report, read_trajectory, report_json

    for name in ("threshold", "rtol"):
        value = getattr(args, name)
        if not math.isfinite(value) or value <= 0:
            raise ExactdynError(f"--{name} must be a positive number, got {value}")
    init = None
    if args.init is not None:
        from .io.initfile import read_initial

        init = read_initial(args.init)
    options = {"activation": args.activation, "eta": args.eta, "output_weights": args.output_weights,
               "N": args.N, "seeds": args.seeds}
    traj = read_trajectory(args.file, options, init)
    report = compare(traj, threshold=args.threshold, rtol=args.rtol)
    if args.format == "json":
        out.write(json.dumps(report_json(traj, report), indent=1) + "\n")
    else:
        out.write(format_report(args.file, traj, report))
    return 0 if report.consistent else 1


# --- plot -----------------------------------------------------------------------------------

def cmd_plot(args, out):
    from .io.plotting import curve_from_file, plot_curves

    if not args.out.lower().endswith(".png"):
        raise ExactdynError(f"--out must name a .png file, got {args.out!r}")
    curves, bands = [], []
    for path in args.files:
        label, alpha, eps, stderr = curve_from_file(path)
        (bands.append((label, alpha, eps, stderr)) if stderr is not None else curves.append((label, alpha, eps)))
    plot_curves(curves, args.out, bands=bands, title=args.title, scale=args.scale)
    out.write(f"wrote {args.out}\n")
    return 0


# --- plateau --------------------------------------------------------------------------------

def cmd_plateau(args, out):
    import mpmath

    from .numeric.committee import finite_n_initial
    from .symbolic.hierarchy import Structure
    from .numeric.plateau import approximate_plateau, find_plateau

    if args.activation == "linear":
        args.activation = "erf"  # the plateau command's default model
    if not 0 < args.deviation < 1:
        raise ExactdynError("--deviation must lie between 0 and 1")
    spectrum = _spectrum_from_args(args, 17)
    lam, frac = spectrum.floats()
    structure = Structure.named(args.activation, args.K, args.M, spectrum.L, args.output_weights)
    if args.N is None:
        teacher, source = [(f * np.eye(args.M)).tolist() for f in frac], "t^k = rho_k I"
    else:
        teacher = finite_n_initial(lam, frac, args.K, args.M, args.N, args.seed, 0.0)[4]
        source = f"a teacher drawn at N = {args.N}, seed {args.seed}"
    pl = find_plateau(structure, lam, frac, teacher, args.eta, digits=args.digits)
    ap = approximate_plateau(structure, lam, frac, teacher, args.eta, digits=args.digits)
    d = args.digits
    with mpmath.workprec(pl.bits):
        show = lambda v: mpmath.nstr(v, d)
        summary = lambda p: {"eps_g": show(p.eps_g), "escape_rate": show(p.escape_rate),
                             "escape_time": show(p.escape_time(args.deviation))}
        data = {"activation": args.activation, "K": args.K, "M": args.M, "L": spectrum.L, "eta": str(args.eta),
                "digits": d, "teacher": source, **summary(pl), "deviation": str(args.deviation),
                "groups": [{"lambda": f"{x:.17g}", "r": [show(v) for v in a], "q_diagonal": show(b),
                            "q_offdiagonal": show(c)} for x, a, b, c in zip(lam, pl.x, pl.y, pl.z)],
                "jacobian_eigenvalues": [mpmath.nstr(e, min(d, 12)) for e in pl.eigenvalues[:8]],
                "approximation": {"made": ap.approximation, **summary(ap)}}
    if args.format == "json":
        out.write(json.dumps(data, indent=1) + "\n")
        return 0
    approx = data["approximation"]
    out.write(f"plateau of the {args.activation} committee machine (all students alike), K = {args.K}, "
              f"M = {args.M}, {spectrum.label}, eta = {args.eta} ({d} digits; {source})\n")
    out.write(f"{'':<44}{'exact':<{d + 8}}papers' approximation ({ap.approximation})\n")
    for label, key in (("eps_g on the plateau", "eps_g"), ("escape rate (largest Jacobian eigenvalue)", "escape_rate"),
                       (f"escape time ln(1/d0)/rate, d0 = {args.deviation}", "escape_time")):
        out.write(f"{label:<44}{data[key]:<{d + 8}}{approx[key]}\n")
    out.write("fixed point per group (r_in for each teacher n, q_ii, q_ij):\n")
    out.write("".join(f"  lambda = {g['lambda']}: {' '.join(g['r'])}  {g['q_diagonal']}  {g['q_offdiagonal']}\n"
                      for g in data["groups"]))
    out.write("leading Jacobian eigenvalues: " + ", ".join(data["jacobian_eigenvalues"]) + "\n")
    return 0


def cmd_late(args, out):
    import mpmath

    from .numeric import committee
    from .symbolic.hierarchy import Structure
    from .numeric.plateau import late_time_expansion

    if args.activation == "linear":
        args.activation = "erf"  # the late command's default model
    if not 0 < args.from_eps <= 1e-3:
        raise ExactdynError("--from-eps must lie in (0, 1e-3]: the expansion is about the zero-error point")
    if not 0 < args.alpha_max < float("inf"):
        raise ExactdynError("--alpha-max must be positive and finite")
    model = Structure.named(args.activation, args.K, args.M, 1, args.output_weights)
    if model.K != model.M:
        raise ExactdynError("late times expand about the specialised point, which needs K = M")
    initial, _, _ = _committee_initial(args, model)
    structure = Structure.named(model.activation, model.K, model.M, initial[5], model.output_weights,
                                model.loss_factor)
    alpha0, state, eps0 = committee.first_below(structure, initial, args.eta, args.from_eps, args.alpha_max)
    if any(a < alpha0 for a in args.alpha):
        raise ExactdynError(f"the expansion starts at alpha0 = {alpha0:g}: ask for alpha >= alpha0")
    lam, frac, t = initial[0], initial[1], initial[4]
    exp = late_time_expansion(structure, lam, frac, t, args.eta, state, alpha0, digits=args.digits)
    with mpmath.workprec(exp.bits):
        # the third-order remainder shows as the mismatch with the ODE at alpha0; vouch for no more
        mismatch = abs(exp.eps_at(alpha0) / eps0 - 1)
        vouched = min(args.digits, int(-mpmath.log10(3 * mismatch))) if mismatch > 0 else args.digits
        if vouched < 1:
            raise ExactdynError(f"the expansion misses the ODE by {mpmath.nstr(mismatch, 2)} at alpha0 = {alpha0:g}: "
                                "no digit to vouch for; start later (a smaller --from-eps)")
        values = [mpmath.nstr(exp.eps_at(a), vouched) for a in args.alpha]
        terms = [{"rate": mpmath.nstr(r, 12), "weight": mpmath.nstr(w, vouched)}
                 for r, w in exp.leading(args.terms)]
        data = {"activation": args.activation, "K": model.K, "L": structure.L, "eta": str(args.eta),
                "alpha0": alpha0, "eps_g_alpha0": f"{eps0:.6g}", "permutation": list(exp.permutation),
                "vouched_digits": vouched, "mismatch_at_alpha0": mpmath.nstr(mismatch, 2),
                "alpha": [str(a) for a in args.alpha], "eps_g": values, "leading_terms": terms}
    if args.format == "json":
        out.write(json.dumps(data, indent=1) + "\n")
        return 0
    out.write(f"late times of the {args.activation} committee machine, K = M = {model.K}, L = {structure.L}, "
              f"eta = {args.eta}: from alpha0 = {alpha0:g} (float64 ODE, eps_g = {eps0:.3g})\n")
    out.write("eps_g(alpha) = sum_j w_j exp(r_j (alpha - alpha0)), to second order in the deviation from the "
              "specialised point\n")
    out.write("slowest terms (rate r_j, weight w_j):\n")
    out.write("".join(f"  {term['rate']:>20}  {term['weight']}\n" for term in terms))
    out.write(f"eps_g ({vouched} digits: the expansion misses the ODE by {data['mismatch_at_alpha0']} at alpha0):\n")
    out.write("".join(f"  alpha = {a}: {v}\n" for a, v in zip(data["alpha"], values)))
    return 0


# --- landscape ------------------------------------------------------------------------------

def cmd_landscape(args, out):
    import sympy as sp

    from .models.quadratic import landscape

    if args.K > 16 or args.M > 16:
        raise ExactdynError("--K and --M must be at most 16")
    classes = landscape(args.K, args.M, args.N, seed=args.seed)
    rows = []
    for c in classes:
        exact = sorted(c.exact.items(), key=lambda kv: float(kv[0]))
        numerical = list(c.numerical)
        pairs = []
        for value, mult in exact:
            near = [nm for nm in numerical if abs(nm[0] - float(value)) <= 1e-7 * max(1.0, abs(float(value)))]
            pairs.append((sp.sstr(value), float(value), mult, near[0][0] if near else None, near[0][1] if near else 0))
            numerical = [nm for nm in numerical if nm not in near[:1]]
        pairs += [(None, None, 0, v, m) for v, m in numerical]
        rows.append((c, pairs))
    if args.format == "json":
        out.write(json.dumps([{"class": c.cls.name, "form": c.cls.description, "gradient_max": c.gradient_norm,
                               "eigenvalues": [{"exact": e, "value": v, "multiplicity": m, "numerical": nv,
                                                "numerical_multiplicity": nm} for e, v, m, nv, nm in pairs]}
                              for c, pairs in rows], indent=1) + "\n")
        return 0
    out.write(f"quadratic network p = {args.K}, p* = {args.M}, N = {args.N}: population-risk Hessian "
              f"({args.K * args.N} x {args.K * args.N}) at each stationary class\n"
              "analytic: exact, reduced to dimension p + p* plus the bulk; numerical: numpy eigvalsh at a "
              "randomly rotated copy\n")
    for c, pairs in rows:
        out.write(f"\n{c.cls.name}: {c.cls.description}   (largest |gradient| {c.gradient_norm:.1e})\n")
        out.write(f"  {'eigenvalue (analytic)':<24}{'mult':>6}   {'numerical':>14}{'mult':>6}\n")
        for e, v, m, nv, nm in pairs:
            left = f"{e:<24}{m:>6}" if e is not None else f"{'-':<24}{0:>6}"
            right = f"{(0.0 if abs(nv) < 1e-12 else nv):>14.8f}{nm:>6}" if nv is not None else f"{'-':>14}{0:>6}"
            flag = "" if (m == nm) else "   <-- mismatch"
            out.write(f"  {left}   {right}{flag}\n")
        neg = sum(m for e, v, m, _, _ in pairs if e is not None and v < 0)
        null = sum(m for e, v, m, _, _ in pairs if e is not None and v == 0)
        pos = sum(m for e, v, m, _, _ in pairs if e is not None and v > 0)
        out.write(f"  negative {neg}, null {null}, positive {pos}\n")
    return 0


# --- demo -----------------------------------------------------------------------------------

def cmd_demo(args, out):
    """Derive, print, solve exactly, compare with finite-N SGD, save a plot."""
    import numpy as np

    from .symbolic.expectations import Polynomial
    from .symbolic.hierarchy import Structure
    from .symbolic.linear import derive_linear
    from .io.plotting import plot_curves
    from .simulate.sgd import simulate
    from .numeric.linear import solve_linear
    from .spectrum import power_law

    L, eta, sigma_J = 8, "0.5", "0.5"
    if args.seeds < 2:
        raise ExactdynError("the demo needs at least 2 seeds for an error bar")
    if args.N % L:
        raise ExactdynError(f"--N must be a multiple of L = {L}")
    spec = power_law(L, 1)
    h = derive_linear(L)
    out.write(f"exactdyn demo: linear network, power-law spectrum L = {L}, beta = 1, eta = {eta}\n\n")
    out.write("derived error hierarchy dD/dalpha = A D (orders 1..L, closed by Cayley-Hamilton):\n")
    for l in (0, 1, L - 1):
        rhs = sum(h.matrix[l, j] * h.D[j] for j in range(L))
        out.write(f"  dD{l + 1}/dalpha = {rhs}\n")
    out.write("  (every equation: exactdyn derive --activation linear --K 1 --M 1 --L 8 --format latex)\n\n")
    alpha = [0, "0.25", "0.5", 1, 2, 4, 8]
    lam, frac = spec.floats()
    sim = simulate(Structure(Polynomial((0, 1)), 1, 1, L), lam, frac,
                   float(eta), [float(a) for a in alpha], N=args.N, seeds=range(args.seeds),
                   sigma_J=float(sigma_J), progress=sys.stderr.isatty())
    lam = np.array(lam)
    d = sim.q[..., 0, 0] - 2 * sim.r[..., 0, 0] + sim.t[None, ..., 0, 0]
    eps = 0.5 * (d * lam).sum(-1)
    mean, se = eps.mean(1), eps.std(1, ddof=1) / np.sqrt(len(sim.seeds))
    # eps_g is linear in the initial overlaps: start the exact curve from the seeds' mean state
    d0 = [str(x) for x in d[0].mean(0)]
    exact = solve_linear(spec, eta, alpha, initial=d0, digits=20)
    out.write("exact curve started from the simulation's mean initial overlaps per eigenvalue group\n")
    out.write(f"{'alpha':>6}  {'exact eps_g (20 certified digits)':<34} SGD N={args.N}, {args.seeds} seeds\n")
    for a, e, m, s in zip(alpha, exact.decimals(), mean, se):
        out.write(f"{str(a):>6}  {e:<34} {m:.5f} +- {s:.5f}\n")
    out.write(f"stability limit of eta: {float(exact.stability_limit.mid()):.6g}\n")
    curve_alpha = [str(x) for x in np.round(np.logspace(-1.5, 1.2, 50), 4)]
    curve = solve_linear(spec, eta, curve_alpha, initial=d0, digits=10)
    plot_curves([("exact", curve.alpha, curve.eps_g)], args.plot,
                bands=[(f"SGD, N={args.N}", [float(a) for a in sim.alpha], mean, se)],
                title=f"linear network, power law L={L}, beta=1, eta={eta}")
    out.write(f"plot saved to {args.plot}\n")
    return 0


# --- entry point ----------------------------------------------------------------------------

def _add_spectrum_arguments(parser):
    parser.add_argument("--L", type=positive_int, help="number of distinct eigenvalues (power law)")
    parser.add_argument("--beta", type=number, help="power-law exponent, lambda_l ~ l^-(1+beta) (default 1)")
    parser.add_argument("--eigenvalues", type=number_list, help="comma-separated distinct eigenvalues instead")
    parser.add_argument("--weights", type=number_list, help="fraction of dimensions of each eigenvalue")


def _add_model_arguments(parser, default_width):
    parser.add_argument("--activation", default="linear", help="linear, erf, quadratic or cubic")
    parser.add_argument("--K", type=positive_int, default=default_width, help="student width")
    parser.add_argument("--M", type=positive_int, default=default_width, help="teacher width")
    parser.add_argument("--output-weights", choices=["one", "sqrt", "mean"], help="output weight convention")


def build_parser():
    p = _Parser(prog="exactdyn", description=__doc__)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    sp_ = sub.add_parser("spectrum", help="eigenvalues, minimal polynomial and traces of an input spectrum")
    _add_spectrum_arguments(sp_)
    sp_.add_argument("--traces", type=positive_int, help="highest trace order (default L+1)")
    sp_.add_argument("--digits", type=positive_int, default=DEFAULT_DIGITS, help="digits for irrational values")
    sp_.add_argument("--format", choices=["json", "text"], default="text")
    sp_.set_defaults(run=cmd_spectrum)

    d = sub.add_parser("derive", help="derive and print the closed ODE system")
    d.add_argument("--activation", default="erf", help="linear, quadratic, cubic or erf")
    d.add_argument("--poly", type=number_list, help="polynomial activation coefficients a_0,a_1,... instead")
    d.add_argument("--K", type=positive_int, default=2, help="student width")
    d.add_argument("--M", type=positive_int, default=2, help="teacher width")
    d.add_argument("--L", type=positive_int, default=1, help="number of distinct eigenvalues")
    d.add_argument("--output-weights", choices=["one", "sqrt", "mean"], help="output weight convention")
    d.add_argument("--loss-factor", type=number, help="loss c (sigma - zeta)^2 (default 1/2; 1 for quadratic)")
    d.add_argument("--basis", choices=["moment", "mode"], default="moment")
    d.add_argument("--format", choices=["latex", "text", "json"], default="text")
    d.add_argument("--no-cache", action="store_true", help="derive afresh, leaving the disk cache alone")
    d.set_defaults(run=cmd_derive)

    so = sub.add_parser("solve", help="solve the dynamics: eps_g(alpha) with certified digits")
    _add_model_arguments(so, default_width=2)
    so.add_argument("--N", type=positive_int, help="start from a finite-N draw of this dimension")
    so.add_argument("--seed", type=int, default=0, help="seed of the draw or of the symmetry-breaking perturbation")
    so.add_argument("--overlaps", action="store_true", help="JSON: include the overlaps per group")
    _add_spectrum_arguments(so)
    so.add_argument("--init", help="initial overlaps per eigenvalue group (JSON file)")
    so.add_argument("--eta", type=number, required=True, help="learning rate")
    so.add_argument("--sigma-J", type=number, default=0, help="student initial scale (expected initial state)")
    so.add_argument("--alpha", type=nonnegative_list, required=True, help="comma-separated times alpha")
    so.add_argument("--digits", type=positive_int,
                    help=f"digits to certify (linear, default {DEFAULT_DIGITS}); for erf, quadratic, cubic: "
                         "selects the high-precision path (default: float64)")
    so.add_argument("--route", choices=["mode", "moment"], default="mode",
                    help="eigenmode (secular equation, default: faster) or moment (shifted polynomial)")
    so.add_argument("--trainable", type=positive_int, help="only the first N eigenvalue groups are trainable")
    so.add_argument("--random-subspace", type=number,
                    help="linear: the student moves in Haar-random subspaces of this fraction of --N dimensions")
    so.add_argument("--draws", type=positive_int, default=4, help="subspaces drawn with --random-subspace (default 4)")
    so.add_argument("--approximations", action="store_true",
                    help="also report the small-eta and integral approximations and their errors")
    so.add_argument("--format", choices=["json", "csv", "text"], default="text")
    so.add_argument("--plot", help="also save a log-log plot to this PNG file")
    so.set_defaults(run=cmd_solve)

    si = sub.add_parser("simulate", help="finite-N one-pass SGD, mean and standard error over seeds")
    _add_model_arguments(si, default_width=1)
    _add_spectrum_arguments(si)
    si.add_argument("--eta", type=number, required=True, help="learning rate")
    si.add_argument("--sigma-J", type=number, default=0, help="student initial scale")
    si.add_argument("--alpha", type=nonnegative_list, required=True, help="comma-separated increasing times")
    si.add_argument("--N", type=positive_int, required=True, help="input dimension")
    si.add_argument("--seeds", type=positive_int, default=8, help="number of seeds")
    si.add_argument("--seed", type=int, default=0, help="first seed")
    si.add_argument("--init-seed", type=int, help="all seeds start from this one draw (only the data differ)")
    si.add_argument("--overlaps", action="store_true", help="JSON: also the overlaps per group (mean over seeds)")
    si.add_argument("--format", choices=["json", "csv"], default="json")
    si.add_argument("--plot", help="also save a log-log plot with error band to this PNG file")
    si.set_defaults(run=cmd_simulate)

    ch = sub.add_parser("check", help="compare a trajectory from another code with exactdyn's prediction")
    ch.add_argument("file", help="trajectory, JSON or CSV (schemas: exactdyn.check)")
    ch.add_argument("--init", help="initial overlaps (init-file JSON) when the trajectory has none")
    ch.add_argument("--activation", choices=["linear", "erf", "quadratic", "cubic"], help="if the file does not say")
    ch.add_argument("--eta", type=number, help="learning rate, if the file does not say")
    ch.add_argument("--output-weights", choices=["one", "sqrt", "mean"], help="if the file does not say")
    ch.add_argument("--N", type=positive_int, help="input dimension of a finite-N simulation")
    ch.add_argument("--seeds", type=positive_int, help="number of seeds the file's curve averages")
    ch.add_argument("--threshold", type=float, default=5.0,
                    help="finite N: largest deviation allowed, in fluctuation units (default 5)")
    ch.add_argument("--rtol", type=float, default=1e-6, help="no N: largest relative deviation allowed")
    ch.add_argument("--format", choices=["text", "json"], default="text")
    ch.set_defaults(run=cmd_check)

    pl = sub.add_parser("plot", help="learning curves from solve/simulate JSON outputs")
    pl.add_argument("files", nargs="+", help="JSON outputs of solve or simulate")
    pl.add_argument("--out", required=True, help="PNG file to write")
    pl.add_argument("--scale", choices=["loglog", "semilogy", "linear"], default="loglog")
    pl.add_argument("--title", default="", help="figure title")
    pl.set_defaults(run=cmd_plot)

    pa = sub.add_parser("plateau", help="the plateau of alike students: fixed point, Jacobian spectrum, escape rate, the papers' approximation")
    _add_model_arguments(pa, default_width=2)
    _add_spectrum_arguments(pa)
    pa.add_argument("--eta", type=number, required=True, help="learning rate")
    pa.add_argument("--digits", type=positive_int, default=20, help="digits of the Newton solution")
    pa.add_argument("--deviation", type=number, default=Fraction(1, 1000),
                    help="symmetry-breaking deviation for the escape-time estimate (default 1e-3)")
    pa.add_argument("--N", type=positive_int, help="draw the teacher at this input dimension (default: t^k = rho_k I)")
    pa.add_argument("--seed", type=int, default=0, help="seed of the teacher draw with --N")
    pa.add_argument("--format", choices=["text", "json"], default="text")
    pa.set_defaults(run=cmd_plateau)

    lt = sub.add_parser("late", help="late times: eps_g as a weighted sum of exponentials near zero error")
    _add_model_arguments(lt, default_width=2)
    _add_spectrum_arguments(lt)
    lt.add_argument("--eta", type=number, required=True, help="learning rate")
    lt.add_argument("--init", help="initial overlaps per eigenvalue group (JSON file)")
    lt.add_argument("--N", type=positive_int, help="start from a finite-N draw of this dimension")
    lt.add_argument("--seed", type=int, default=0, help="seed of the draw or of the symmetry-breaking perturbation")
    lt.add_argument("--sigma-J", type=number, default=Fraction(1, 100), help="student initial scale (default 0.01)")
    lt.add_argument("--from-eps", type=float, default=1e-7,
                    help="start the expansion where the float64 ODE first falls below this eps_g (default 1e-7)")
    lt.add_argument("--alpha-max", type=float, default=1e5, help="give up past this alpha (default 1e5)")
    lt.add_argument("--alpha", type=nonnegative_list, default=[], help="comma-separated times alpha >= alpha0")
    lt.add_argument("--terms", type=positive_int, default=6, help="how many of the slowest terms to print")
    lt.add_argument("--digits", type=positive_int, default=20, help="working digits of the linearisation")
    lt.add_argument("--format", choices=["text", "json"], default="text")
    lt.set_defaults(run=cmd_late)

    la = sub.add_parser("landscape", help="quadratic network: Hessian spectra at the stationary points")
    la.add_argument("--K", type=positive_int, default=4, help="student width p")
    la.add_argument("--M", type=positive_int, default=2, help="teacher width p*")
    la.add_argument("--N", type=positive_int, default=20, help="input dimension")
    la.add_argument("--seed", type=int, default=0, help="seed of the random rotation of the numerical check")
    la.add_argument("--format", choices=["text", "json"], default="text")
    la.set_defaults(run=cmd_landscape)

    demo = sub.add_parser("demo", help="the main job on built-in defaults")
    demo.add_argument("--N", type=positive_int, default=1024, help="input dimension of the simulation")
    demo.add_argument("--seeds", type=positive_int, default=6, help="number of simulation seeds (>= 2)")
    demo.add_argument("--plot", default="exactdyn-demo.png", help="where to save the figure")
    demo.set_defaults(run=cmd_demo)
    return p


def main(argv=None, out=None):
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "run", None):
            raise ExactdynError("give a command: spectrum, derive, solve, simulate, check, plot, plateau, landscape, demo (see --help)")
        return args.run(args, out)
    except ExactdynError as exc:
        print(f"exactdyn: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"exactdyn: error: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("exactdyn: interrupted", file=sys.stderr)
        return 130
