"""The symmetric plateau of the erf committee machine: Newton fixed point, escape rate, CLI."""
import json

import mpmath
import numpy as np
import pytest

from exactdyn import Structure, power_law
from exactdyn.cli import main
from exactdyn.numeric.committee import integrate
from exactdyn.numeric.committee import finite_n_initial
from exactdyn.numeric.plateau import approximate_plateau, find_plateau


def _setup(L):
    lam, frac = power_law(L, 1).floats()
    return Structure.named("erf", 2, 2, L), lam, frac, [[[f, 0], [0, f]] for f in frac]


@pytest.mark.parametrize("L", [1, 4])
def test_escape_rate_predicts_the_plateau_length(L):
    """Started on the fixed point with a symmetry-breaking deviation d0, the float64 ODE leaves the
    plateau later by ln(1000)/rate when d0 shrinks from 1e-3 to 1e-6: the linearised escape."""
    structure, lam, frac, t = _setup(L)
    eta = 0.1
    pl = find_plateau(structure, lam, frac, t, eta, digits=20)
    assert pl.residual < mpmath.mpf(10) ** -20
    assert pl.escape_rate > 0 and sum(1 for e in pl.eigenvalues if mpmath.re(e) > 0) == 1
    G = np.random.default_rng(0).normal(size=(2, 2))
    alpha = np.linspace(0, 4000, 4001)
    exits = []
    for d0 in (1e-3, 1e-6):
        r = [(np.array([float(v) for v in x]) + d0 * f * G).tolist() for x, f in zip(pl.x, frac)]
        q = [[[float(y), float(z)], [float(z), float(y)]] for y, z in zip(pl.y, pl.z)]
        eps = np.array(integrate(structure, (lam, frac, r, q, t, L), eta, alpha, verify=False).eps_g)
        assert abs(eps[0] / float(pl.eps_g) - 1) < 30 * d0  # the start is on the plateau, up to the deviation
        exits.append(alpha[np.argmax(eps < float(pl.eps_g) / 2)])
    predicted = float(pl.escape_time(1e-6) - pl.escape_time(1e-3))
    assert abs((exits[1] - exits[0]) / predicted - 1) < 0.01


def test_plateau_digits_survive_a_recomputation_at_higher_precision():
    structure, lam, frac, t = _setup(2)
    low = find_plateau(structure, lam, frac, t, 0.1, digits=20)
    high = find_plateau(structure, lam, frac, t, 0.1, digits=40)
    with mpmath.workprec(high.bits):
        for a, b in ((low.eps_g, high.eps_g), (low.escape_rate, high.escape_rate), (low.x[0][0], high.x[0][0])):
            assert abs(a - b) <= mpmath.mpf(10) ** -20 * abs(b)


def test_plateau_of_a_drawn_teacher_holds_the_float64_ode():
    """A finite-N teacher (unequal norms and overlaps): the plateau has one r per teacher.  The
    float64 ODE (the other backend) started there stays at its height; started with every r^k_in
    off by 1e-3 n (eps_g 26% off), it comes back to it before escaping."""
    structure, lam, frac, _ = _setup(2)
    t = finite_n_initial(lam, frac, 2, 2, 64, 3, 0.0)[4]
    pl = find_plateau(structure, lam, frac, t, 0.1, digits=20)
    assert pl.residual < mpmath.mpf(10) ** -20
    assert abs(float(pl.x[0][0] / pl.x[0][1]) - 1) > 0.01  # the teachers are not learnt alike
    q = [[[float(y), float(z)], [float(z), float(y)]] for y, z in zip(pl.y, pl.z)]
    for shift, bound in ((0.0, 1e-8), (1e-3, 1e-7)):
        r = [[[float(v) + shift * n for n, v in enumerate(x, 1)]] * 2 for x in pl.x]
        eps = integrate(structure, (lam, frac, r, q, t, 2), 0.1, [0, 300, 600, 900], verify=False, rtol=1e-12).eps_g
        assert max(abs(e / float(pl.eps_g) - 1) for e in eps[1:]) < bound
    assert abs(eps[0] / float(pl.eps_g) - 1) > 0.1


def test_papers_approximation_errs_at_first_order_in_eta():
    """For a uniform teacher only the eta^2 terms are dropped: the approximate plateau height misses
    the exact one by O(eta) (ten times less at eta = 0.01 than at 0.1), and its escape rate is
    proportional to eta."""
    structure, lam, frac, t = _setup(1)
    gaps, rates = [], []
    for eta in (0.1, 0.01):
        exact = find_plateau(structure, lam, frac, t, eta, digits=15)
        approx = approximate_plateau(structure, lam, frac, t, eta, digits=15)
        gaps.append(abs(float(approx.eps_g / exact.eps_g) - 1))
        rates.append(float(approx.escape_rate) / eta)
    assert 7 < gaps[0] / gaps[1] < 13 and gaps[1] > 1e-5
    assert abs(rates[0] / rates[1] - 1) < 1e-10


def test_plateau_cli(capsys):
    assert main(["plateau", "--K", "2", "--M", "2", "--L", "2", "--eta", "0.1", "--digits", "15",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert float(data["escape_rate"]) > 0 and float(data["eps_g"]) > 0 and len(data["groups"]) == 2
    assert float(data["approximation"]["eps_g"]) > 0 and "first order" in data["approximation"]["made"]
    assert main(["plateau", "--K", "1", "--M", "1", "--L", "2", "--eta", "0.1"]) == 2
    assert "K >= 2" in capsys.readouterr().err


@pytest.mark.parametrize("L", [1, 4])
def test_late_time_slowest_mode_decays_at_its_eigenvalue(L):
    """Started at the specialised point plus 1e-6 along the slowest eigenvector, the float64 ODE's
    deviation shrinks as exp(mu_slowest alpha); and the rates spread over more decades as L grows."""
    from exactdyn.numeric.plateau import late_time_linearisation

    structure, lam, frac, t = _setup(L)
    lt = late_time_linearisation(structure, lam, frac, t, 0.1, digits=20)
    assert all(mpmath.re(e) < 0 for e in lt.eigenvalues)
    v = np.array([float(x) for x in lt.slowest_vector])
    v /= np.abs(v).max()
    where = {n: i for i, n in enumerate(lt.states)}
    d0 = 1e-6

    def target(name):
        k, a, b = (int(x) for x in name[1:].split("_"))
        return t[k - 1][a - 1][b - 1]

    r = [[[t[k][i][n] + d0 * v[where[f"r{k + 1}_{i + 1}_{n + 1}"]] for n in range(2)] for i in range(2)]
         for k in range(L)]
    q = [[[t[k][i][j] + d0 * v[where[f"q{k + 1}_{min(i, j) + 1}_{max(i, j) + 1}"]] for j in range(2)]
          for i in range(2)] for k in range(L)]
    run = integrate(structure, (lam, frac, r, q, t, L), 0.1, [0, 200])
    deviation = [max(abs(ov[n] - target(n)) for n in lt.states) for ov in run.overlaps]
    assert abs(np.log(deviation[1] / deviation[0]) / 200 / float(lt.slowest) - 1) < 1e-4


def test_late_time_rates_spread_with_L():
    from exactdyn.numeric.plateau import late_time_linearisation

    spread = []
    for L in (1, 4):
        structure, lam, frac, t = _setup(L)
        lt = late_time_linearisation(structure, lam, frac, t, 0.1, digits=15)
        spread.append(float(lt.fastest / lt.slowest))
    assert spread[1] > 10 * spread[0]


def _late_state(L, alpha_end):
    """The float64 ODE from a near-symmetric start; the state where eps_g first drops below 1e-7."""
    from exactdyn.numeric.committee import expected_initial

    structure, lam, frac, t = _setup(L)
    alpha = np.linspace(0, alpha_end, 101)
    run = integrate(structure, expected_initial(lam, frac, 2, 2, 0.01, perturbation=1e-2), 0.1, alpha,
                    verify=False, rtol=1e-12)
    start = int(np.argmax((np.array(run.eps_g) < 1e-7) & (alpha > 500)))
    ov = run.overlaps[start]
    r = [[[ov[f"r{k}_{i}_{n}"] for n in (1, 2)] for i in (1, 2)] for k in range(1, L + 1)]
    q = [[[ov[f"q{k}_{min(i, j)}_{max(i, j)}"] for j in (1, 2)] for i in (1, 2)] for k in range(1, L + 1)]
    return structure, (lam, frac, r, q, t, L), ov, alpha[start]


@pytest.mark.parametrize("L,alpha_end,span", [(1, 3000, 600), (2, 5000, 1200)])
def test_late_time_expansion_follows_the_ode(L, alpha_end, span):
    """From a late state (eps_g ~ 1e-7) the second-order weighted sum of exponentials follows the
    ODE, restarted there at rtol 1e-13 (its digits checked against rtol 1e-12), to 0.2% while eps_g
    falls 200-fold; its slowest term decays at twice the slowest eigenvalue.  A first-order Taylor
    expansion of eps_g (rates mu_a only) misses the error almost entirely: eps_g's gradient vanishes
    on the slowest modes."""
    from exactdyn.numeric.plateau import late_time_expansion

    structure, init, overlaps, alpha0 = _late_state(L, alpha_end)
    lam, frac, t = init[0], init[1], init[4]
    steps = np.linspace(0, span, 7)
    fine, coarse = (np.array(integrate(structure, init, 0.1, steps, verify=False, rtol=tol, atol=1e-30).eps_g)
                    for tol in (1e-13, 1e-12))
    assert np.all(np.abs(coarse / fine - 1) < 1e-4) and fine[-1] < fine[0] / 100
    expansion = late_time_expansion(structure, lam, frac, t, 0.1, overlaps, alpha0, digits=20)
    for s, e in zip(steps, fine):
        assert abs(float(expansion.eps_at(alpha0 + s)) / e - 1) < 2e-3
        assert abs(float(expansion.first_order_at(alpha0 + s)) / e - 1) > 0.5
    slowest = max(mpmath.re(r) for r in expansion.rates[:expansion.first_order_count])
    assert abs(mpmath.re(expansion.leading(1)[0][0]) / (2 * slowest) - 1) < 1e-12


def test_high_precision_path_resolves_a_small_error():
    """At eps_g ~ 1e-7 the first pair of high-precision runs loses digits to the cancellation; the
    rerun with them added (more bits than the first pair's) delivers the 8 asked, matching the
    restarted float64 ODE to its own accuracy."""
    from exactdyn.numeric.highprec import integrate_mp
    from exactdyn.numbers import bits_for_digits

    structure, init, _, _ = _late_state(1, 3000)
    hp = integrate_mp(structure, init, "0.1", [0, 20], digits=8)
    assert hp.digits == 8 and hp.bits > bits_for_digits(8) + 32 + 64
    fl = integrate(structure, init, 0.1, [0, 20], verify=False, rtol=1e-13, atol=1e-30).eps_g
    assert all(abs(float(a) / b - 1) < 1e-5 for a, b in zip(hp.eps_g, fl))


def test_late_cli(capsys):
    """`exactdyn late` integrates to eps_g < 1e-7, expands there and prints what it vouches for; its
    value agrees with the library's expansion against the ODE (checked above) to those digits."""
    assert main(["late", "--L", "1", "--eta", "0.1", "--sigma-J", "0.01", "--alpha", "3000,3500",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 1 <= data["vouched_digits"] <= 20 and float(data["mismatch_at_alpha0"]) < 1e-2
    assert data["alpha0"] <= 3000 and len(data["eps_g"]) == 2
    e1, e2 = (float(x) for x in data["eps_g"])
    assert 0 < e2 < e1 < 1e-7
    rate = float(data["leading_terms"][0]["rate"])
    assert abs(np.log(e2 / e1) / 500 / rate - 1) < 0.05  # the slowest term dominates there
    for argv, message in ((["late", "--K", "2", "--M", "3", "--eta", "0.1"], "K = M"),
                          (["late", "--L", "1", "--eta", "0.1", "--alpha", "1"], "alpha >= alpha0"),
                          (["late", "--L", "1", "--eta", "0.1", "--from-eps", "2"], "--from-eps"),
                          (["late", "--L", "1", "--eta", "0.1", "--alpha-max", "100"], "raise --alpha-max")):
        assert main(argv) == 2
        assert message in capsys.readouterr().err


def test_fixed_point_requests_are_checked():
    from exactdyn import ExactdynError
    from exactdyn.numeric.plateau import late_time_expansion

    structure, lam, frac, t = _setup(2)
    with pytest.raises(ExactdynError, match="2 matrices of size 2 x 2"):
        find_plateau(structure, lam, frac, t[:1], 0.1, digits=10)
    with pytest.raises(ExactdynError, match="K = M"):
        late_time_expansion(Structure.named("erf", 2, 3, 2), lam, frac, t, 0.1, {}, 0.0)
    with pytest.raises(ExactdynError, match="the state has no r1_1_1"):
        late_time_expansion(structure, lam, frac, t, 0.1, {"q1_1_1": 1.0}, 0.0)
