"""Command line: a thin shell over the library.  Bad input: one line on stderr, exit status 2."""
from fractions import Fraction
import json
import math
import sys

from .cli_args import (DEFAULT_DIGITS, EPILOG, Parser as _Parser, add_commands, add_perceptron_parser,
                       add_sweep_parser,
                       add_model_arguments as _add_model_arguments, add_spectrum_arguments as _add_spectrum_arguments,
                       digits as _digits, nonnegative_list, number, positive_int, real, seed as _seed)
from .errors import ExactdynError
from .io.plotting import check_png_path
from .numbers import bits_for_digits


# --- spectrum, problem, initial state ---------------------------------------------------------

def _spectrum_from_args(args, digits):
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
    # balls lose about log2(L) bits a power, and the linear solver works with 64 guard bits
    return power_law(args.L, beta, prec=bits_for_digits(digits) + 128 + 16 * args.L.bit_length())


def _problem_and_state(args, default_width=2, digits=17):
    """(Problem, InitialState, where the state came from): --init FILE, a draw (--N, --seed) or the
    expected state; a linear network is K = M = 1 unless --K/--M say otherwise."""
    from .problem import InitialState, Problem

    K, M = (w or (1 if args.activation == "linear" else default_width) for w in (args.K, args.M))
    if args.init is not None:
        if args.L is not None or args.beta is not None or args.eigenvalues is not None or args.N is not None:
            raise ExactdynError("--init defines the spectrum and the state: leave out --L, --beta, --eigenvalues, --N")
        initial = InitialState.from_file(args.init)
        problem = Problem.named(args.activation, K, M, initial.spectrum, args.eta, args.output_weights)
        initial.check_fits(problem)
        return problem, initial, f"file {args.init}"
    problem = Problem.named(args.activation, K, M, _spectrum_from_args(args, digits), args.eta, args.output_weights)
    if args.N is not None and getattr(args, "random_subspace", None) is None:
        return problem, InitialState.draw(problem, args.N, args.seed, args.sigma_J), f"drawn at N = {args.N}, " \
                                                                                      f"seed {args.seed}"
    return problem, InitialState.expected(problem, args.sigma_J, seed=args.seed), "expected"


def cmd_spectrum(args, out):
    from .io.reports import write_spectrum
    from .spectrum import check_power_law_traces

    if args.L is not None and args.eigenvalues is None:
        check_power_law_traces(args.L, args.beta if args.beta is not None else 1, args.traces or args.L + 1)
    spectrum = _spectrum_from_args(args, args.digits)
    write_spectrum(out, spectrum, args.digits, args.traces or spectrum.L + 1, args.format)
    return 0


# --- derive ---------------------------------------------------------------------------------

def cmd_derive(args, out):
    from .symbolic.cache import derive
    from .symbolic.expectations import Polynomial
    from .symbolic.hierarchy import Structure
    from .symbolic.render import render

    activation = Polynomial(tuple(args.poly)) if args.poly is not None else args.activation
    structure = Structure.named(activation, args.K, args.M, args.L, args.output_weights, args.loss_factor)
    system = derive(structure, args.basis, use_cache=not args.no_cache)
    out.write(render(system, structure, args.format))
    return 0


# --- solve ---------------------------------------------------------------------------------

MAX_SUBSPACE_WORK = 10 ** 12  # N^3 x draws: about a minute of QR factorisations


def _solution(args, problem, initial):
    from .numeric.subspace import random_subspace_solution
    from .solve import solve

    certified = problem.is_linear and problem.K == problem.M == 1
    if args.random_subspace is None:
        if certified and args.N is not None:
            raise ExactdynError("--N goes with --random-subspace for linear networks")
        digits = args.digits if args.digits is not None or not certified else DEFAULT_DIGITS
        return solve(problem, initial, args.alpha, digits=digits, route=args.route, trainable=args.trainable,
                     overlaps=args.overlaps, progress=sys.stderr.isatty())
    if args.N is None:
        raise ExactdynError("--random-subspace needs --N, the input dimension of the drawn subspaces")
    if args.init is not None or args.trainable is not None or args.route != "mode" or args.approximations:
        raise ExactdynError("--random-subspace goes without --init, --trainable, --route moment and --approximations")
    if args.N ** 3 * args.draws > MAX_SUBSPACE_WORK:
        raise ExactdynError(f"{args.draws} Haar-random subspaces at N = {args.N} cost about N^3 = {args.N ** 3:.2g} "
                            f"operations each: keep N^3 x draws <= {MAX_SUBSPACE_WORK:.0e}")
    return random_subspace_solution(problem, args.random_subspace, args.alpha, N=args.N, sigma_J=args.sigma_J,
                                    draws=range(args.seed, args.seed + args.draws))


def cmd_solve(args, out):
    from .io.curves import plot_solution, write_solution
    from .numeric.linear import approximations

    if args.plot:
        check_png_path(args.plot, "--plot")
    problem, initial, source = _problem_and_state(args, digits=args.digits or DEFAULT_DIGITS)
    if args.approximations and not (problem.is_linear and problem.K == problem.M == 1):
        raise ExactdynError("--approximations are for the linear network with K = M = 1")
    sol = _solution(args, problem, initial)
    if sol.message:
        print(f"exactdyn: warning: {sol.message}", file=sys.stderr)
    info = {"sigma_J": str(args.sigma_J), "initial_state": source}
    if args.approximations:
        beta = (args.beta or 1) if args.L is not None and args.trainable is None else None
        info.update(approximations(problem.spectrum, problem.eta, args.alpha, initial=initial.error_overlaps(),
                                   sigma_J=args.sigma_J, trainable=args.trainable, beta=beta))
    write_solution(out, sol, problem, args.format, info)
    if args.plot:
        plot_solution(sol, problem, args.plot)
    return 3 if sol.status.value == "partial" else 0


# --- simulate, check, plot ------------------------------------------------------------------

def cmd_simulate(args, out):
    from .io.curves import plot_simulation, write_simulation
    from .problem import Problem
    from .simulate.sgd import simulate_curve

    if args.plot:
        check_png_path(args.plot, "--plot")
    problem = Problem.named(args.activation, args.K, args.M, _spectrum_from_args(args, 17), args.eta,
                            args.output_weights)
    curve = simulate_curve(problem, args.alpha, N=args.N, seeds=range(args.seed, args.seed + args.seeds),
                           sigma_J=args.sigma_J, init_seed=args.init_seed, progress=sys.stderr.isatty(),
                           method=args.method)
    write_simulation(out, curve, problem, args.format, {"sigma_J": str(args.sigma_J), "init_seed": args.init_seed},
                     overlaps=args.overlaps)
    if args.plot:
        plot_simulation(curve, problem, args.plot)
    return 0


def cmd_check(args, out):
    """Exit 0 when the trajectory is consistent with exactdyn, 1 when not, 2 for unusable input."""
    from .io.initfile import read_initial
    from .simulate.check import check, format_report, report_json

    init = read_initial(args.init) if args.init is not None else None
    options = {"activation": args.activation, "eta": args.eta, "output_weights": args.output_weights,
               "N": args.N, "seeds": args.seeds}
    traj, report = check(args.file, options, init, threshold=args.threshold, rtol=args.rtol)
    if args.format == "json":
        out.write(json.dumps(report_json(traj, report), indent=1) + "\n")
    else:
        out.write(format_report(args.file, traj, report))
    return 0 if report.consistent else 1


def cmd_plot(args, out):
    from .io.curves import read_curve
    from .io.plotting import plot_curves

    check_png_path(args.out, "--out")
    curves, bands = [], []
    for path in args.files:
        label, alpha, eps, stderr = read_curve(path)
        (bands.append((label, alpha, eps, stderr)) if stderr is not None else curves.append((label, alpha, eps)))
    plot_curves(curves, args.out, bands=bands, title=args.title, scale=args.scale)
    out.write(f"wrote {args.out}\n")
    return 0


# --- plateau --------------------------------------------------------------------------------

def cmd_plateau(args, out):
    from .numeric.plateau import approximate_plateau, find_plateau
    from .problem import InitialState, Problem

    if args.activation == "linear":
        args.activation = "erf"  # the plateau command's default model
    if not 0 < args.deviation < 1:
        raise ExactdynError("--deviation must lie between 0 and 1")
    spectrum = _spectrum_from_args(args, args.digits)
    problem = Problem.named(args.activation, args.K, args.M, spectrum, args.eta, args.output_weights)
    teacher, source = None, "t^k = rho_k I"
    if args.N is not None:
        teacher, source = InitialState.draw(problem, args.N, args.seed).t, f"a teacher drawn at N = {args.N}, " \
                                                                             f"seed {args.seed}"
    pl = find_plateau(problem, teacher, digits=args.digits)
    ap = approximate_plateau(problem, teacher, digits=args.digits)
    data = _plateau_data(args, problem, source, pl, ap)
    if args.format == "json":
        out.write(json.dumps(data, indent=1) + "\n")
    else:
        _write_plateau(out, args, spectrum.label, data, ap.approximation)
    return 0


def _show(value, digits):
    """`digits` significant digits (trailing zeros kept: they are vouched for too); a complex value
    whose imaginary part rounds away at that relative precision prints as real."""
    import mpmath

    if digits < 1:
        return "unverified"
    if isinstance(value, mpmath.mpc) and abs(value.imag) <= abs(value) * mpmath.mpf(10) ** -digits:
        value = value.real
    return mpmath.nstr(value, digits, strip_zeros=False)


def _plateau_data(args, problem, source, pl, ap):
    """Every value with the digits its two runs agree on (at most --digits)."""
    import flint

    from .numbers import certified_decimal, fmpq_str

    lam = [fmpq_str(x) if isinstance(x, flint.fmpq) else certified_decimal(x, 17) for x in problem.spectrum.eigenvalues]
    summary = lambda p: {"eps_g": _show(p.eps_g, p.eps_g_digits),
                         "escape_rate": _show(p.escape_rate, p.escape_rate_digits),
                         "escape_time": _show(p.escape_time(args.deviation), p.escape_rate_digits)}
    groups = [{"lambda": x, "r": [_show(v, d) for v, d in zip(a, ad)], "q_diagonal": _show(b, bd),
               "q_offdiagonal": _show(c, cd)}
              for x, a, ad, b, bd, c, cd in zip(lam, pl.x, pl.x_digits, pl.y, pl.y_digits, pl.z, pl.z_digits)]
    return {"activation": args.activation, "K": args.K, "M": args.M, "L": problem.L, "eta": str(args.eta),
            "digits": args.digits, "teacher": source, **summary(pl), "deviation": str(args.deviation), "groups": groups,
            "jacobian_eigenvalues": [_show(e, min(12, d)) for e, d in zip(pl.eigenvalues[:8], pl.eigenvalue_digits)],
            "approximation": {"made": ap.approximation, **summary(ap)}}


def _write_plateau(out, args, label, data, made):
    d, approx = args.digits, data["approximation"]
    out.write(f"plateau of the {args.activation} committee machine (all students alike), K = {args.K}, "
              f"M = {args.M}, {label}, eta = {args.eta} (up to {d} verified digits; {data['teacher']})\n")
    out.write(f"{'':<44}{'exact':<{d + 8}}papers' approximation ({made})\n")
    for text, key in (("eps_g on the plateau", "eps_g"), ("escape rate (largest Jacobian eigenvalue)", "escape_rate"),
                      (f"escape time ln(1/d0)/rate, d0 = {args.deviation}", "escape_time")):
        out.write(f"{text:<44}{data[key]:<{d + 8}}{approx[key]}\n")
    out.write("fixed point per group (r_in for each teacher n, q_ii, q_ij):\n")
    out.write("".join(f"  lambda = {g['lambda']}: {' '.join(g['r'])}  {g['q_diagonal']}  {g['q_offdiagonal']}\n"
                      for g in data["groups"]))
    out.write("leading Jacobian eigenvalues: " + ", ".join(data["jacobian_eigenvalues"]) + "\n")


def cmd_late(args, out):
    from .numeric.late_time import first_below, late_time_expansion

    if args.activation == "linear":
        args.activation = "erf"  # the late command's default model
    if not 0 < args.from_eps <= 1e-3:
        raise ExactdynError("--from-eps must lie in (0, 1e-3]: the expansion is about the zero-error point")
    if not 0 < args.alpha_max < float("inf"):
        raise ExactdynError("--alpha-max must be positive and finite")
    if args.K != args.M:
        raise ExactdynError("late times expand about the specialised point, which needs K = M")
    problem, initial, _ = _problem_and_state(args, digits=args.digits)
    found = first_below(problem, initial, args.from_eps, args.alpha_max)
    if found is None:
        raise ExactdynError(f"eps_g stays above {args.from_eps:g} up to alpha = {args.alpha_max:g}: raise --alpha-max "
                            "or --from-eps")
    alpha0, state, eps0 = found
    if any(a < alpha0 for a in args.alpha):
        raise ExactdynError(f"the expansion starts at alpha0 = {alpha0:g}: ask for alpha >= alpha0")
    exp = late_time_expansion(problem, state, alpha0, digits=args.digits)
    vouched, mismatch = exp.truncation_digits(eps0)
    if vouched < 1:
        raise ExactdynError(f"the expansion misses the ODE by {_show(mismatch, 2)} at alpha0 = {alpha0:g}: "
                            "no digit to vouch for; start later (a smaller --from-eps)")
    data = _late_data(args, problem, exp, alpha0, eps0, vouched, mismatch)
    if args.format == "json":
        out.write(json.dumps(data, indent=1) + "\n")
    else:
        _write_late(out, args, data)
    return 0


def _late_data(args, problem, exp, alpha0, eps0, vouched, mismatch):
    terms = [{"rate": _show(r, min(12, d)), "weight": _show(w, vouched)}
             for (r, w), d in zip(exp.leading(args.terms), exp.leading_digits(args.terms))]
    return {"activation": args.activation, "K": problem.K, "L": problem.L, "eta": str(args.eta),
            "alpha0": alpha0, "eps_g_alpha0": f"{eps0:.6g}", "permutation": list(exp.permutation),
            "vouched_digits": vouched, "mismatch_at_alpha0": _show(mismatch, 2), "alpha": [str(a) for a in args.alpha],
            "eps_g": [_show(exp.eps_at(a), min(vouched, exp.digits_at(a))) for a in args.alpha],
            "leading_terms": terms}


def _write_late(out, args, data):
    out.write(f"late times of the {args.activation} committee machine, K = M = {data['K']}, L = {data['L']}, "
              f"eta = {args.eta}: from alpha0 = {data['alpha0']:g} "
              f"(float64 ODE, eps_g = {float(data['eps_g_alpha0']):.3g})\n")
    out.write("eps_g(alpha) = sum_j w_j exp(r_j (alpha - alpha0)), to second order in the deviation from the "
              "specialised point\n")
    out.write("slowest terms (rate r_j, weight w_j):\n")
    out.write("".join(f"  {term['rate']:>20}  {term['weight']}\n" for term in data["leading_terms"]))
    out.write(f"eps_g ({data['vouched_digits']} digits: the expansion misses the ODE by {data['mismatch_at_alpha0']} "
              "at alpha0):\n")
    out.write("".join(f"  alpha = {a}: {v}\n" for a, v in zip(data["alpha"], data["eps_g"])))


# --- landscape, demo ------------------------------------------------------------------------

def cmd_landscape(args, out):
    from .io.reports import write_landscape
    from .models.quadratic import landscape

    if args.K > 16 or args.M > 16:
        raise ExactdynError("--K and --M must be at most 16")
    write_landscape(out, landscape(args.K, args.M, args.N, seed=args.seed), args.K, args.M, args.N, args.format)
    return 0


def cmd_demo(args, out):
    from .demo import run_demo

    check_png_path(args.plot, "--plot")
    run_demo(out, N=args.N, seeds=args.seeds, plot=args.plot, progress=sys.stderr.isatty())
    return 0


# --- sweep ---------------------------------------------------------------------------------

SWEEP_AXES = ("activation", "K", "M", "L", "beta", "eta", "sigma_J", "seed")


def cmd_sweep(args, out):
    from .sweep import sweep

    if args.kind == "solve" and args.alpha is None:
        raise ExactdynError("sweep --kind solve needs --alpha")
    grid = {name: getattr(args, name) for name in SWEEP_AXES if getattr(args, name) is not None}
    res = sweep(grid, kind=args.kind, alpha=args.alpha or (), digits=args.digits, out=args.out,
                scheduler=args.scheduler, workers=args.workers, progress=sys.stderr.isatty(), limit=args.limit)
    failed = res.table.loc[res.table["error"] != "", SWEEP_AXES].drop_duplicates()
    unverified = (res.table["digits"] == 0).sum() - len(res.table[res.table["error"] != ""])
    out.write(f"{res.computed} point(s) computed, {res.skipped} already done, {res.remaining} left; "
              f"{len(failed)} failed, {unverified} value(s) unverified; wrote "
              + ", ".join(str(f) for f in res.files.values()) + "\n")
    return 3 if len(failed) or unverified else 0


# --- perceptron ------------------------------------------------------------------------------

def cmd_perceptron(args, out):
    from .models.perceptron.command import run

    if args.action == "check":
        if not math.isfinite(args.threshold) or args.threshold <= 0:
            raise ExactdynError("--threshold must be a positive number")
        if not (math.isfinite(args.rtol) and 0 < args.rtol < 1):
            raise ExactdynError("--rtol must lie in (0, 1)")
        return run(args, None, out)
    return run(args, _spectrum_from_args(args, 17), out)


# --- entry point ----------------------------------------------------------------------------

def build_parser():
    p = _Parser(prog="exactdyn", description=__doc__, epilog=EPILOG)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    add_commands(sub, {"spectrum": cmd_spectrum, "derive": cmd_derive, "solve": cmd_solve, "simulate": cmd_simulate,
                       "check": cmd_check, "plot": cmd_plot, "landscape": cmd_landscape, "demo": cmd_demo})
    add_sweep_parser(sub, cmd_sweep)
    add_perceptron_parser(sub, cmd_perceptron)

    pa = sub.add_parser("plateau", help="the plateau of alike students: fixed point, Jacobian spectrum, escape rate, the papers' approximation")
    _add_model_arguments(pa, default_width=2)
    _add_spectrum_arguments(pa)
    pa.add_argument("--eta", type=number, required=True, help="learning rate")
    pa.add_argument("--digits", type=_digits, default=20, help="digits of the Newton solution")
    pa.add_argument("--deviation", type=number, default=Fraction(1, 1000),
                    help="symmetry-breaking deviation for the escape-time estimate (default 1e-3)")
    pa.add_argument("--N", type=positive_int, help="draw the teacher at this input dimension (default: t^k = rho_k I)")
    pa.add_argument("--seed", type=_seed, default=0, help="seed of the teacher draw with --N")
    pa.add_argument("--format", choices=["text", "json"], default="text")
    pa.set_defaults(run=cmd_plateau)

    lt = sub.add_parser("late", help="late times: eps_g as a weighted sum of exponentials near zero error")
    _add_model_arguments(lt, default_width=2)
    _add_spectrum_arguments(lt)
    lt.add_argument("--eta", type=number, required=True, help="learning rate")
    lt.add_argument("--init", help="initial overlaps per eigenvalue group (JSON file)")
    lt.add_argument("--N", type=positive_int, help="start from a finite-N draw of this dimension")
    lt.add_argument("--seed", type=_seed, default=0, help="seed of the draw or of the symmetry-breaking perturbation")
    lt.add_argument("--sigma-J", type=number, default=Fraction(1, 100), help="student initial scale (default 0.01)")
    lt.add_argument("--from-eps", type=real, default=1e-7,
                    help="start the expansion where the float64 ODE first falls below this eps_g (default 1e-7)")
    lt.add_argument("--alpha-max", type=real, default=1e5, help="give up past this alpha (default 1e5)")
    lt.add_argument("--alpha", type=nonnegative_list, default=[], help="comma-separated times alpha >= alpha0")
    lt.add_argument("--terms", type=positive_int, default=6, help="how many of the slowest terms to print")
    lt.add_argument("--digits", type=_digits, default=20, help="working digits of the linearisation")
    lt.add_argument("--format", choices=["text", "json"], default="text")
    lt.set_defaults(run=cmd_late)
    return p


def main(argv=None, out=None):
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "run", None):
            raise ExactdynError("give a command: spectrum, derive, solve, simulate, check, plot, plateau, late, "
                                "landscape, demo, sweep, perceptron (see --help)")
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
