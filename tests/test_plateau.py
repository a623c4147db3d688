"""The symmetric plateau and late times of the erf committee machine, each against an independent route."""
from fractions import Fraction
import json

import mpmath
import numpy as np
import pytest
import sympy as sp

from exactdyn import ExactdynError, power_law
from exactdyn.cli import main
from exactdyn.numeric import engine
from exactdyn.numeric.late_time import (first_below, late_time_expansion, late_time_linearisation,
                                        specialisation_permutation)
from exactdyn.numeric.overlaps import assign, overlap_table
from exactdyn.numeric.plateau import approximate_plateau, curve_plateau, find_plateau
from exactdyn.problem import InitialState, Problem, exact
from exactdyn.solve import solve
from exactdyn.symbolic.cache import derive

ETA = Fraction(1, 10)


def _problem(L, K=2, eta=ETA):
    return Problem("erf", K, K, power_law(L, 1), eta)


def _plateau_state(problem, pl, teacher, shift=lambda k, i, n: 0):
    """The InitialState of a plateau (every student alike), r^k_in shifted by shift(k, i, n)."""
    K = problem.K
    r = [[[exact(float(v)) + shift(k, i, n) for n, v in enumerate(x)] for i in range(K)] for k, x in enumerate(pl.x)]
    q = [[[exact(float(y if i == j else z)) for j in range(K)] for i in range(K)] for y, z in zip(pl.y, pl.z)]
    return InitialState(r, q, teacher)


def _explicit_residual(problem, state, digits):
    """max |rhs| at `state` (full state, system order) by sympy's lambdify in mpmath of the explicit
    equations (every intermediate substituted): shares the derivation with the engine, nothing else."""
    system = derive(problem.structure, "mode")
    spec = problem.spectrum
    t = InitialState.expected(problem, perturbation=0).t
    zeros = lambda rows, cols: [[[0] * cols for _ in range(rows)] for _ in range(problem.L)]
    params = assign(system, overlap_table([exact(x) for x in spec.eigenvalues], [exact(w) for w in spec.weights],
                                          zeros(problem.K, problem.M), zeros(problem.K, problem.K), t,
                                          problem.eta))[1]
    f = sp.lambdify(list(system.states) + list(system.params), list(system.explicit_rhs()), "mpmath")
    with mpmath.workdps(digits):
        return max(abs(v) for v in f(*state, *[mpmath.mpf(p.numerator) / p.denominator for p in params]))


def _full_state(problem, pl):
    system = derive(problem.structure, "mode")
    value = {"r": lambda k, a, b: pl.x[k - 1][b - 1], "q": lambda k, a, b: pl.y[k - 1] if a == b else pl.z[k - 1]}
    return [value[kind](k, a, b) for kind, k, a, b in system.layout]


@pytest.fixture(scope="module")
def plateau_L2():
    problem = _problem(2)
    return problem, find_plateau(problem, digits=30), find_plateau(problem, digits=60)


def test_plateau_digits_survive_a_recomputation_at_higher_precision(plateau_L2):
    """The exact spectrum and eta go in exact: the 30-digit plateau agrees with the 60-digit one to 30
    digits in every value (the float64 spectrum the CLI once passed broke this at the 17th)."""
    _, low, high = plateau_L2
    pairs = [(low.eps_g, high.eps_g), (low.escape_rate, high.escape_rate)]
    pairs += [(a, b) for x, y in zip(low.x, high.x) for a, b in zip(x, y)]
    pairs += list(zip(low.y, high.y)) + list(zip(low.z, high.z))
    with mpmath.workprec(high.bits):
        for a, b in pairs:
            assert abs(a - b) <= mpmath.mpf(10) ** -30 * abs(b)
    assert low.eps_g_digits == low.escape_rate_digits == 30 and set(low.eigenvalue_digits) == {30}
    assert high.eps_g_digits == 60 and all(d == 60 for x in high.x_digits for d in x)


def test_plateau_residual_by_an_independent_route(plateau_L2):
    """The fixed point's residual by lambdify (mpmath, 60 digits) of the explicit equations is below
    1e-28; the same point moved by 1e-20 fails that test (planted error)."""
    problem, low, _ = plateau_L2
    state = _full_state(problem, low)
    assert _explicit_residual(problem, state, 60) < mpmath.mpf(10) ** -28
    planted = [v + mpmath.mpf(10) ** -20 if j == 0 else v for j, v in enumerate(state)]
    assert _explicit_residual(problem, planted, 60) > mpmath.mpf(10) ** -28


def test_exact_jacobian_agrees_with_central_differences(plateau_L2):
    """The plateau's Jacobian (heyoka's exact derivatives) against central differences of the engine's
    rhs at the same P bits, step 2^(-P/3): truncation and cancellation each ~ 2^(-2P/3), so the entries
    agree to about 2P/3 bits and the eigenvalues (the old finite-difference route) to the 30 digits."""
    problem, pl, _ = plateau_L2
    system = derive(problem.structure, "mode")
    spec = problem.spectrum
    t = InitialState.expected(problem, perturbation=0).t
    zeros = lambda rows, cols: [[[0] * cols for _ in range(rows)] for _ in range(problem.L)]
    params = assign(system, overlap_table([exact(x) for x in spec.eigenvalues], [exact(w) for w in spec.weights],
                                          zeros(2, 2), zeros(2, 2), t, problem.eta))[1]
    P = pl.bits
    evaluator = engine.RealEvaluator(engine.compile_system(system), params, P)
    with mpmath.workprec(P):
        y = _full_state(problem, pl)
        jac = evaluator.values(y)[2]
        h = mpmath.mpf(2) ** -(P // 3)
        moved = lambda j, s: evaluator.values([v + s * h if i == j else v for i, v in enumerate(y)])[0]
        columns = [[(a - b) / (2 * h) for a, b in zip(moved(j, 1), moved(j, -1))] for j in range(len(y))]
        scale = max(abs(v) for row in jac for v in row)
        gap = max(abs(columns[j][i] - jac[i][j]) for i in range(len(y)) for j in range(len(y)))
        assert gap <= mpmath.mpf(2) ** (10 - 2 * P // 3) * scale
        differenced = engine.eigensystem([[columns[j][i] for j in range(len(y))] for i in range(len(y))], P)
        for e, d in zip(pl.eigenvalues, differenced):
            assert abs(e - d) <= mpmath.mpf(10) ** -30 * abs(e)


@pytest.mark.parametrize("L", [1, 4])
def test_escape_rate_predicts_the_plateau_length(L):
    """Started on the fixed point with a symmetry-breaking deviation d0, the float64 ODE leaves the
    plateau later by ln(1000)/rate when d0 shrinks from 1e-3 to 1e-6: the linearised escape."""
    problem = _problem(L)
    pl = find_plateau(problem, digits=20)
    assert pl.residual < mpmath.mpf(10) ** -20 and pl.escape_rate_digits == 20
    assert pl.escape_rate > 0 and sum(1 for e in pl.eigenvalues if mpmath.re(e) > 0) == 1
    G = np.random.default_rng(0).normal(size=(2, 2))
    rho = [exact(w) for w in problem.spectrum.weights]
    t = InitialState.expected(problem, perturbation=0).t
    alpha = list(range(0, 4001))
    exits = []
    for d0 in (Fraction(1, 10 ** 3), Fraction(1, 10 ** 6)):
        start = _plateau_state(problem, pl, t, lambda k, i, n: d0 * rho[k] * exact(G[i, n]))
        eps = np.array(solve(problem, start, alpha).floats())
        assert abs(eps[0] / float(pl.eps_g) - 1) < 30 * d0  # the start is on the plateau, up to the deviation
        exits.append(alpha[int(np.argmax(eps < float(pl.eps_g) / 2))])
    predicted = float(pl.escape_time(Fraction(1, 10 ** 6)) - pl.escape_time(Fraction(1, 10 ** 3)))
    assert abs((exits[1] - exits[0]) / predicted - 1) < 0.01


def test_plateau_of_a_drawn_teacher_holds_the_float64_ode():
    """A finite-N teacher (unequal norms and overlaps): the plateau has one r per teacher.  The
    float64 ODE started there stays at its height; started with every r^k_in down by 1e-3 n (eps_g
    26% off; a shift up would break Cauchy-Schwarz), it comes back to it before escaping."""
    problem = _problem(2)
    t = InitialState.draw(problem, 64, 3).t
    pl = find_plateau(problem, t, digits=20)
    assert pl.residual < mpmath.mpf(10) ** -20
    assert abs(float(pl.x[0][0] / pl.x[0][1]) - 1) > 0.01  # the teachers are not learnt alike
    for shift, bound in ((0, 1e-8), (Fraction(-1, 1000), 1e-7)):
        start = _plateau_state(problem, pl, t, lambda k, i, n: shift * (n + 1))
        eps = solve(problem, start, [0, 300, 600, 900]).floats()
        assert max(abs(e / float(pl.eps_g) - 1) for e in eps[1:]) < bound
    assert abs(eps[0] / float(pl.eps_g) - 1) > 0.1


@pytest.mark.parametrize("K,L", [(2, 1), (2, 2), (3, 1)])
def test_papers_approximation_is_saad_and_sollas_closed_form(K, L):
    """First order in eta with a uniform teacher, the symmetric fixed point is Saad & Solla's (1995):
    identical students with Q = C = 1/(2K - 1), R = 1/sqrt(K (2K - 1)) and eps_g = (K/pi) (pi/6 -
    K asin(1/(2K))), whatever eta; with L groups each carries the fraction rho_k of Q and R."""
    problem = _problem(L, K)
    approx = approximate_plateau(problem, digits=30)
    rho = [exact(w) for w in problem.spectrum.weights]
    with mpmath.workdps(40):
        frac = lambda k: mpmath.mpf(rho[k].numerator) / rho[k].denominator
        eps = K / mpmath.pi * (mpmath.pi / 6 - K * mpmath.asin(mpmath.mpf(1) / (2 * K)))
        Q, R = mpmath.mpf(1) / (2 * K - 1), 1 / mpmath.sqrt(K * (2 * K - 1))
        assert abs(approx.eps_g - eps) <= mpmath.mpf(10) ** -30 * eps and approx.eps_g_digits == 30
        for k in range(L):
            for value, expected in [(approx.y[k], Q), (approx.z[k], Q)] + [(x, R) for x in approx.x[k]]:
                assert abs(value - frac(k) * expected) <= mpmath.mpf(10) ** -30 * frac(k) * expected


def test_papers_approximation_errs_at_first_order_in_eta():
    """The approximate plateau height and escape rate miss the exact ones by O(eta): ten times less at
    eta = 0.01 than at 0.1."""
    gaps = []
    for eta in (Fraction(1, 10), Fraction(1, 100)):
        problem = _problem(1, eta=eta)
        exact_, approx = find_plateau(problem, digits=15), approximate_plateau(problem, digits=15)
        gaps.append([abs(float(a / e) - 1) for a, e in ((approx.eps_g, exact_.eps_g),
                                                        (approx.escape_rate, exact_.escape_rate))])
    for big, small in zip(*gaps):
        assert 7 < big / small < 13 and small > 1e-5


def test_plateau_cli(plateau_L2, capsys):
    """The 30 digits the CLI prints are those of the 60-digit library plateau (the CLI once fed
    float64 eigenvalues into Newton's method and printed 13 wrong digits)."""
    _, _, high = plateau_L2
    assert main(["plateau", "--K", "2", "--M", "2", "--L", "2", "--beta", "1", "--eta", "0.1", "--digits", "30",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    with mpmath.workprec(high.bits):
        for key, value in (("eps_g", high.eps_g), ("escape_rate", high.escape_rate)):
            assert data[key] == mpmath.nstr(value, 30, strip_zeros=False)
    assert len(data["groups"]) == 2 and data["groups"][1]["lambda"] == "2/5"
    assert float(data["approximation"]["eps_g"]) > 0 and "first order" in data["approximation"]["made"]
    assert main(["plateau", "--K", "1", "--M", "1", "--L", "2", "--eta", "0.1"]) == 2
    assert "K >= 2" in capsys.readouterr().err


def _engine_run(problem, state, alpha, rtol):
    """float64 states of the compiled ODE from a full state (names -> value), LSODA at `rtol`."""
    system = derive(problem.structure, "mode")
    spec = problem.spectrum
    t = InitialState.expected(problem, perturbation=0).t
    zeros = lambda rows, cols: [[[0] * cols for _ in range(rows)] for _ in range(problem.L)]
    params = assign(system, overlap_table([exact(x) for x in spec.eigenvalues], [exact(w) for w in spec.weights],
                                          zeros(problem.K, problem.M), zeros(problem.K, problem.K), t,
                                          problem.eta))[1]
    names = [str(s) for s in system.states]
    run = engine.integrate_float(engine.compile_system(system), [state[n] for n in names], params, alpha, rtol=rtol)
    return [dict(zip(names, s)) for s in run.states]


@pytest.mark.parametrize("L", [1, 4])
def test_late_time_slowest_mode_decays_at_its_eigenvalue(L):
    """Started at the specialised point plus 1e-6 along the slowest eigenvector, the float64 ODE's
    deviation shrinks as exp(mu_slowest alpha)."""
    problem = _problem(L)
    lt = late_time_linearisation(problem, digits=20)
    assert all(mpmath.re(e) < 0 for e in lt.eigenvalues) and set(lt.eigenvalue_digits) == {20}
    v = np.array([float(x) for x in lt.slowest_vector])
    v /= np.abs(v).max()
    rho = [float(exact(w)) for w in problem.spectrum.weights]
    target = {n: rho[int(n[1:].split("_")[0]) - 1] * (n.split("_")[1] == n.split("_")[2]) for n in lt.states}
    start = {n: target[n] + 1e-6 * v[j] for j, n in enumerate(lt.states)}
    run = _engine_run(problem, start, [0, 200], 1e-11)
    deviation = [max(abs(ov[n] - target[n]) for n in lt.states) for ov in run]
    assert abs(np.log(deviation[1] / deviation[0]) / 200 / float(lt.slowest) - 1) < 1e-4


def test_late_time_rates_spread_with_L():
    spread = []
    for L in (1, 4):
        lt = late_time_linearisation(_problem(L), digits=15)
        spread.append(float(lt.fastest / lt.slowest))
    assert spread[1] > 10 * spread[0]


def _late_state(L):
    """The state where the float64 ODE from a near-symmetric start first has eps_g < 1e-7."""
    problem = _problem(L)
    initial = InitialState.expected(problem, Fraction(1, 100))
    alpha0, state, eps0 = first_below(problem, initial, Fraction(1, 10 ** 7), 10 ** 5)
    return problem, alpha0, state, eps0


def test_first_below_is_where_the_ode_crosses_the_level():
    """The event's alpha0 against the float64 ODE (solve) on either side of it: eps_g is above the
    level 1 before and below 1 after (the decay rate there is ~1e-2, so ~1e-2 relative a unit)."""
    problem, alpha0, _, eps0 = _late_state(1)
    initial = InitialState.expected(problem, Fraction(1, 100))
    before, after = solve(problem, initial, [exact(alpha0) - 1, exact(alpha0) + 1]).floats()
    assert before > 1e-7 > after and abs(eps0 / 1e-7 - 1) < 1e-6
    assert first_below(problem, initial, Fraction(1, 10 ** 7), 100) is None


@pytest.mark.parametrize("L,span", [(1, 600), (2, 1200)])
def test_late_time_expansion_follows_the_ode(L, span):
    """From a late state (eps_g ~ 1e-7) the second-order weighted sum of exponentials follows the
    ODE restarted there (solve, float64, its digits verified) to 0.2% while eps_g falls 200-fold; its
    slowest term decays at twice the slowest eigenvalue.  A first-order Taylor expansion of eps_g
    (rates mu_a only) misses the error almost entirely: eps_g's gradient vanishes on the slowest
    modes."""
    problem, alpha0, state, _ = _late_state(L)
    steps = [Fraction(span * j, 6) for j in range(7)]
    sol = solve(problem, state, steps)
    fine = np.array(sol.floats())
    assert min(sol.digits) >= 4 and fine[-1] < fine[0] / 100
    expansion = late_time_expansion(problem, state, alpha0, digits=20)
    for s, e in zip(steps, fine):
        assert abs(float(expansion.eps_at(exact(alpha0) + s)) / e - 1) < 2e-3
        assert abs(float(expansion.first_order_at(exact(alpha0) + s)) / e - 1) > 0.5
    slowest = max(mpmath.re(r) for r in expansion.rates[:expansion.first_order_count])
    assert abs(mpmath.re(expansion.leading(1)[0][0]) / (2 * slowest) - 1) < 1e-12
    assert min(expansion.rate_digits) == 20 and expansion.leading_digits(1) == [20]


def test_late_time_expansion_takes_solve_overlaps():
    """A state given as solve(..., overlaps=True) names -> floats, with students swapped: the same
    expansion as from the InitialState, up to the relabelling."""
    problem, alpha0, state, _ = _late_state(1)
    named = solve(problem, state, [0, 1], overlaps=True).overlaps[0]

    def renamed(name):  # students 1 and 2 swapped
        kind, k, a, b = name[0], *(int(x) for x in name[1:].split("_"))
        a, b = (3 - a, b) if kind == "r" else sorted((3 - a, 3 - b))
        return f"{kind}{k}_{a}_{b}"

    swapped = {renamed(n): v for n, v in named.items()}
    assert specialisation_permutation(swapped, 2, 1) != specialisation_permutation(named, 2, 1)
    direct = late_time_expansion(problem, state, alpha0, digits=20)
    relabelled = late_time_expansion(problem, swapped, alpha0, digits=20)
    later = exact(alpha0) + 500
    assert abs(relabelled.eps_at(later) / direct.eps_at(later) - 1) < 1e-12


def test_late_cli(capsys):
    """`exactdyn late` finds eps_g < 1e-7, expands there and prints what it vouches for; its value
    agrees with the library's expansion against the ODE (checked above) to those digits."""
    assert main(["late", "--L", "1", "--eta", "0.1", "--sigma-J", "0.01", "--alpha", "3000,3500",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    vouched = data["vouched_digits"]
    assert 1 <= vouched <= 20 and float(data["mismatch_at_alpha0"]) < 1e-2
    assert data["alpha0"] <= 3000 and len(data["eps_g"]) == 2
    e1, e2 = (float(x) for x in data["eps_g"])
    assert 0 < e2 < e1 < 1e-7
    rate = float(data["leading_terms"][0]["rate"])
    # what the slowest term's rate can be checked to from the printed values: each is off by up to half
    # a unit in its last vouched digit (relative <= 10^(1-v)/2), and the next term (weight 1% of the
    # leading one, decaying 1e-3 faster) bends the local rate by < 1e-3 between 3000 and 3500
    assert abs(np.log(e2 / e1) / 500 / rate - 1) < 10.0 ** (1 - vouched) / abs(np.log(e2 / e1)) + 1e-3
    for argv, message in ((["late", "--K", "2", "--M", "3", "--eta", "0.1"], "K = M"),
                          (["late", "--L", "1", "--eta", "0.1", "--alpha", "1"], "alpha >= alpha0"),
                          (["late", "--L", "1", "--eta", "0.1", "--from-eps", "2"], "--from-eps"),
                          (["late", "--L", "1", "--eta", "0.1", "--alpha-max", "100"], "raise --alpha-max")):
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def test_fixed_point_requests_are_checked():
    problem = _problem(2)
    with pytest.raises(ExactdynError, match="2 matrices of size 2 x 2"):
        find_plateau(problem, InitialState.expected(problem, perturbation=0).t[:1], digits=10)
    with pytest.raises(ExactdynError, match="symmetric"):
        find_plateau(problem, [[[1, 2], [0, 1]]] * 2, digits=10)
    with pytest.raises(ExactdynError, match="digits"):
        find_plateau(problem, digits=0)
    with pytest.raises(ExactdynError, match="Problem"):
        find_plateau("erf", digits=10)
    with pytest.raises(ExactdynError, match="K = M"):
        late_time_expansion(Problem("erf", 2, 3, power_law(2, 1), ETA), {}, 0)
    with pytest.raises(ExactdynError, match="the state has no r1_1_1"):
        late_time_expansion(problem, {"q1_1_1": 1.0}, 0)
    with pytest.raises(ExactdynError, match="InitialState or a dict"):
        late_time_expansion(problem, [1, 2], 0)


def test_curve_plateau_on_a_synthetic_curve():
    """A drop, a plateau at 0.02 and an escape at alpha = 40, written down by hand."""
    alpha = np.linspace(0, 80, 1601)
    eps = 0.02 + 0.4 * np.exp(-2 * alpha) - 0.02 / (1 + np.exp(-(alpha - 40)))
    start, height, length = curve_plateau(alpha, eps)
    assert height == pytest.approx(0.02, rel=0.02) and 38 < start + length < 42
    assert curve_plateau(alpha, np.ones_like(alpha)) is None
    assert curve_plateau(alpha, 0.02 + 0.4 * np.exp(-2 * alpha)) is None  # never escapes


def test_teacher_overlaps_of_no_real_vectors_are_refused():
    from exactdyn.numeric.plateau import teacher_overlaps

    problem = Problem("erf", 2, 2, power_law(1, 1), Fraction(1, 10))
    assert teacher_overlaps(problem, [[[1, "1/2"], ["1/2", 1]]])[0][0][1] == Fraction(1, 2)
    with pytest.raises(ExactdynError, match="positive semi-definite"):
        teacher_overlaps(problem, [[[1, 2], [2, 1]]])   # |t_12| > sqrt(t_11 t_22): Cauchy-Schwarz
