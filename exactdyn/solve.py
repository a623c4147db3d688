"""One entry point: solve(problem, initial, alpha, *, digits=None, method="auto") -> Solution.

- linear networks with K = M = 1 and loss (sigma - zeta)^2 / 2: the certified solver (ball
  arithmetic; digits *certified*);
- every other derived system: the compiled engine, float64 (digits=None) or arbitrary precision
  (digits=d), each checked by a second, independent run (digits *verified*, per point).
"""
from fractions import Fraction
import time

from .errors import ExactdynError
from .numbers import bits_for_digits, to_fraction
from .numeric import engine, grouped, quadrature
from .numeric.certify import agreed_digits, ball_digits
from .numeric.overlaps import assign, overlap_table
from .problem import InitialState, Problem, Solution, Status, exact
from .spectrum import sequence
from .symbolic.cache import derive
from .symbolic.quadrature_activations import QuadratureActivation

METHODS = ("auto", "linear", "float64", "taylor")
FLOAT_DIGITS = 15
MAX_DIGITS = 1000
MAX_SECONDS = 3600.0
# The engine steps through alpha: at L = 1024 the float64 pair to 1e6 takes minutes, and past the
# rounding floor there is nothing left to resolve.
MAX_ENGINE_ALPHA = 10 ** 6
# seconds per (state x unit of eta*lambda_1*alpha x squared tens of digits), Taylor in MPFR;
# calibrated on erf K = M = 2, L = 16, 30 digits (bench/bench_engine.py)
_TAYLOR_COST = 1.5e-5


def _alpha(alpha):
    try:
        values = [to_fraction(a, "alpha") for a in sequence(alpha, "alpha")]
    except TypeError:
        raise ExactdynError("alpha must be a list of numbers") from None
    if not values:
        raise ExactdynError("alpha must hold at least one value")
    if any(a < 0 for a in values) or values != sorted(values):
        raise ExactdynError("alpha must be >= 0 and increasing")
    return values


def _method(problem, digits, method):
    if method not in METHODS:
        raise ExactdynError(f"unknown method {method!r}: choose {', '.join(METHODS)}")
    if digits is not None and (isinstance(digits, bool) or not isinstance(digits, int)
                               or not 1 <= digits <= MAX_DIGITS):
        raise ExactdynError(f"digits must be a whole number from 1 to {MAX_DIGITS}, got {digits!r}")
    linear = problem.is_linear and problem.K == problem.M == 1 and problem.loss_factor == Fraction(1, 2)
    if method == "linear" and not linear:
        raise ExactdynError("the certified linear solver takes linear networks with K = M = 1")
    if method == "float64" and digits is not None and digits > FLOAT_DIGITS:
        raise ExactdynError(f"float64 cannot give {digits} digits: leave out method or pick 'taylor'")
    if method != "auto":
        return method
    if linear:
        return "linear"
    return "float64" if digits is None else "taylor"


def solve(problem, initial=None, alpha=(0, 1), *, digits=None, method="auto", basis="mode", sigma_J=0,
          overlaps=False, max_seconds=MAX_SECONDS, progress=False, route="mode", trainable=None):
    """eps_g(alpha) of `problem` from `initial` (default: InitialState.expected(problem, sigma_J)).

    ``digits``: None for float64 (the digits two runs agree on, up to 15), else the digits asked for
    (certified for linear K = M = 1, verified otherwise).  ``method``: 'auto', 'linear', 'float64' or
    'taylor'.  ``basis``: the engine integrates the eigenmode ('mode') or the moment ('moment')
    system (the moment basis is ill-conditioned: give it digits at L > 4).  ``overlaps``: keep the
    state at each alpha (engine only).  A request whose estimated cost exceeds ``max_seconds`` is
    refused before it starts.  ``route`` ('mode' or 'moment') and ``trainable`` (feature scaling:
    only the first groups move) are options of the certified linear solver.
    """
    if not isinstance(problem, Problem):
        raise ExactdynError("solve needs an exactdyn Problem")
    if initial is None:
        initial = InitialState.expected(problem, sigma_J)
    if not isinstance(initial, InitialState):
        raise ExactdynError("initial must be an exactdyn InitialState")
    initial.check_fits(problem)
    alphas = _alpha(alpha)
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not 0 < max_seconds < float("inf"):
        raise ExactdynError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")
    chosen = _method(problem, digits, method)
    if chosen == "linear":
        if overlaps:
            raise ExactdynError("the certified linear solver gives eps_g only: ask method 'float64' or 'taylor' "
                                "for the overlaps")
        return _solve_linear(problem, initial, alphas, digits, route, trainable, max_seconds)
    if alphas[-1] > MAX_ENGINE_ALPHA:
        raise ExactdynError(f"alpha must be at most {MAX_ENGINE_ALPHA:.0e} for this network: the engine integrates "
                            "step by step (minutes already at 1e6)")
    if route != "mode" or trainable is not None:
        raise ExactdynError("route and trainable are options of the certified linear solver (linear, K = M = 1)")
    if basis not in ("mode", "moment"):
        raise ExactdynError(f"unknown basis {basis!r}: mode or moment")
    if isinstance(problem.activation, QuadratureActivation):  # tanh, sigmoid: expectations by quadrature
        quadrature.check_scope(problem)
        system = derive(problem.structure, basis)
        return quadrature.solve_quadrature(problem, system, *_values(system, problem, initial), alphas, digits=digits,
                                           method=method, overlaps=overlaps, max_seconds=max_seconds)
    system = derive(problem.structure, basis)
    y0, params = _values(system, problem, initial)
    if chosen == "float64":
        return _solve_float(system, problem, y0, params, alphas, overlaps)
    _refuse_costly(problem, system, alphas, digits, max_seconds)
    return _solve_taylor(system, problem, y0, params, alphas, digits, overlaps, progress)


def _values(system, problem, initial):
    spec = problem.spectrum
    coefficients = [exact(c) for c in spec.coefficients()] if system.basis == "moment" else None
    table = overlap_table([exact(x) for x in spec.eigenvalues], [exact(w) for w in spec.weights],
                          initial.r, initial.q, initial.t, problem.eta, coefficients)
    return assign(system, table)


def _named(system, states):
    names = [str(s) for s in system.states]
    return tuple(dict(zip(names, s)) for s in states)


def _solve_linear(problem, initial, alphas, digits, route, trainable, max_seconds):
    from .numeric.linear import solve_linear

    asked = digits or FLOAT_DIGITS
    sol = solve_linear(problem.spectrum, problem.eta, alphas, initial=initial.error_overlaps(), digits=asked,
                       route=route, trainable=trainable, max_seconds=max_seconds)
    status = Status.OK if sol.status == "ok" else Status.UNSTABLE
    message = "" if status is Status.OK else "eta is past the stability limit: the error grows"
    counts = tuple(asked if ball_digits(b) is None else min(asked, ball_digits(b)) for b in sol.eps_g)
    return Solution(tuple(sol.alpha), tuple(sol.eps_g), counts, True, status, message,
                    f"certified linear solver ({sol.route} route)", sol.bits,
                    stats={"seconds": sol.seconds, "stability_limit": sol.stability_limit,
                           **({} if trainable is None else {"trainable": trainable, "eps_g_limit": sol.plateau})})


def _per_point(values, checks, cap):
    counts = tuple(agreed_digits(v, c, cap) for v, c in zip(values, checks))
    return counts, Status.OK if min(counts) >= cap else Status.PARTIAL


def _solve_float(system, problem, y0, params, alphas, overlaps):
    (loose, how_loose), (tight, how) = (grouped.integrate_float64(system, y0, params, alphas, looser=scale)
                                        for scale in (10, 1))
    counts = tuple(agreed_digits(v, c, FLOAT_DIGITS) for v, c in zip(loose.eps_g, tight.eps_g))
    status = Status.OK if min(counts) >= 1 else Status.PARTIAL
    message = "" if status is Status.OK else (
        f"{counts.count(0)} point(s) could not be verified in float64 (eps_g down to "
        f"{min(abs(v) for v in tight.eps_g):.1e} there is rounding): ask digits for them")
    return Solution(tuple(alphas), tight.eps_g, counts, False, status, message,
                    f"float64: {' and '.join(sorted({how, how_loose}))} (heyoka), verified by a 10x looser run", 53,
                    _named(system, tight.states) if overlaps else None,
                    {"seconds": loose.seconds + tight.seconds, "rhs_evaluations": tight.steps})


def _refuse_costly(problem, system, alphas, digits, max_seconds):
    lam1 = max(float(exact(x)) for x in problem.spectrum.eigenvalues)
    work = float(problem.eta) * lam1 * float(alphas[-1]) + 10
    estimate = 2.5 * _TAYLOR_COST * len(system.states) * work * (digits / 10) ** 2
    if estimate > max_seconds:
        raise ExactdynError(f"{digits} digits to alpha = {float(alphas[-1]):g} at L = {problem.L} would take about "
                            f"{estimate:.3g} s (limit {max_seconds:g} s): ask fewer digits, a shorter alpha range, "
                            "or raise max_seconds")


def _solve_taylor(system, problem, y0, params, alphas, digits, overlaps, progress):
    """Two Taylor runs, the second with 64 more bits and 6 more digits of tolerance; the points
    where they agree on fewer digits than asked (eps_g near zero is a cancellation) are redone
    with the shortfall added, twice at most."""
    from tqdm import tqdm

    started = time.perf_counter()
    compiled = engine.compile_system(system)
    extra, steps = 0, 0
    for _ in range(3):
        bits = bits_for_digits(digits + extra) + 32
        bar = tqdm(total=2 * len(alphas), disable=not progress, unit="alpha", desc=f"{bits} bits", leave=False)
        run = engine.integrate_real(compiled, y0, params, alphas, bits=bits, tol_digits=digits + extra + 4,
                                    progress=bar)
        check = engine.integrate_real(compiled, y0, params, alphas, bits=bits + 64,
                                      tol_digits=digits + extra + 10, progress=bar)
        bar.close()
        steps += run.steps + check.steps
        counts, status = _per_point(run.eps_g, check.eps_g, digits)
        if status is Status.OK:
            break
        extra += digits - min(counts) + 4
    message = "" if status is Status.OK else \
        f"{sum(c < digits for c in counts)} point(s) verified to fewer than {digits} digits"
    return Solution(tuple(alphas), check.eps_g, counts, False, status, message,
                    "Taylor (heyoka, MPFR), verified by a second run at 64 more bits", bits + 64,
                    _named(system, check.states) if overlaps else None,
                    {"seconds": time.perf_counter() - started, "steps": steps})
