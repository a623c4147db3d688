"""The quadratic-network paper's printed equations, each checked against exactdyn's derivation.

Each `paper_*` function transcribes a printed equation: it is the claim under test, not a source
of exactdyn's equations.  docs/errata.md records the outcome; every entry there has a test here.
"""
import numpy as np
import pytest
import sympy as sp

from exactdyn.symbolic.hierarchy import ETA as eta
from exactdyn.models.quadratic import (EPS_SYM, T_SYM, closest_solution, compile_flow, escape_law, isotropic_system,
                                landscape, norm_fixed_point, plateau_rates, population_hessian, risk_gradient,
                                risk_quadratic, s_matrix, student_dof, trajectory, zero_error_dimensions)

WIDTHS = [(1, 1), (2, 1), (3, 2), (2, 3)]


@pytest.fixture(scope="module", params=WIDTHS, ids=lambda w: f"p{w[0]}-pstar{w[1]}")
def system(request):
    return isotropic_system(*request.param)


def _sums(s):
    p, ps, Q, rho = s.p, s.pstar, s.Q, s.rho
    trQ = sum(Q[r][r] for r in range(p))
    return p, ps, Q, rho, trQ


def paper_eq23(s):
    p, ps, Q, rho, trQ = _sums(s)
    return (sp.Rational(ps + 2, ps) - sp.Rational(2, p) * trQ
            - sp.Rational(4, p * ps) * sum(rho[k][l] ** 2 for k in range(p) for l in range(ps))
            + sp.Rational(1, p ** 2) * (3 * sum(Q[k][k] ** 2 for k in range(p))
                                        + 2 * sum(Q[k][k] * Q[j][j] + 2 * Q[k][j] ** 2
                                                  for k in range(p) for j in range(k + 1, p))))


def paper_eq33(s, k, l):
    p, ps, Q, rho, _ = _sums(s)
    others = sum(Q[r][r] for r in range(p) if r != k)
    return (4 * eta / p * rho[k][l] * (1 + sp.Rational(2, ps) - sp.Rational(1, p) * (others + 3 * Q[k][k]))
            - 8 * eta / p ** 2 * sum(Q[k][r] * rho[r][l] for r in range(p) if r != k))


def paper_eq34(s, k, kp, q_coefficient=None):
    """Eq. (34); `q_coefficient` replaces the bracket multiplying Q_kk' in the eta^2 term."""
    p, ps, Q, rho, trQ = _sums(s)
    rr = sum(rho[k][l] * rho[kp][l] for l in range(ps))
    first = (8 * eta / p * Q[k][kp] * (1 - sp.Rational(1, p) * (trQ + Q[k][k] + Q[kp][kp]))
             + sp.Rational(16, p * ps) * eta * rr
             - 8 * eta / p ** 2 * sum(Q[r][k] * Q[r][kp] for r in range(p) if r != k)
             - 8 * eta / p ** 2 * sum(Q[r][k] * Q[r][kp] for r in range(p) if r != kp))
    bracket = (1 + sp.Rational(2, ps) - sp.Rational(2 * p - 1, p ** 2) * trQ ** 2
               - sp.Rational(1, p * ps) * sum(rho[r][l] ** 2 for r in range(p) for l in range(ps)))
    if q_coefficient is not None:
        bracket = q_coefficient
    brace = (Q[k][kp] * bracket + sp.Rational(4, ps) * rr + sp.Rational(8, ps ** 2) * rr
             + sp.Rational(4, p ** 2) * trQ * sum(Q[k][r] * Q[kp][r] for r in range(p))
             + sp.Rational(8, p ** 2) * sum(Q[a][b] * Q[k][a] * Q[kp][b] for a in range(p) for b in range(p))
             - sp.Rational(4, p) * sum(Q[k][r] * Q[kp][r] for r in range(p))
             - sp.Rational(4, p * ps) * trQ * rr
             - sp.Rational(8, p * ps) * sum(rho[k][l] * rho[r][l] * Q[kp][r] for r in range(p) for l in range(ps))
             - sp.Rational(8, p * ps) * sum(rho[kp][l] * rho[r][l] * Q[k][r] for r in range(p) for l in range(ps)))
    return first + 16 * eta ** 2 / p ** 2 * brace


def test_eq23_population_risk_agrees(system):
    assert sp.expand(paper_eq23(system) - system.risk) == 0


def test_eq33_rho_equation_agrees(system):
    for k in range(system.p):
        for l in range(system.pstar):
            assert sp.expand(paper_eq33(system, k, l) - system.rhs[system.rho[k][l]]) == 0


def test_eq34_eta_terms_agree_eta2_bracket_is_the_risk(system):
    """Erratum: in the eta^2 term of Eq. (34) the factor of Q_kk' is the population risk R of
    Eq. (23), not [1 + 2/p* - (2p-1)/p^2 (sum_r Q_rr)^2 - (1/(p p*)) sum rho^2]."""
    s = system
    for k in range(s.p):
        for kp in range(k, s.p):
            derived = s.rhs[s.Q[k][kp]]
            printed = sp.expand(paper_eq34(s, k, kp) - derived)
            assert printed.coeff(eta, 1) == 0            # every O(eta) term as printed
            assert printed.coeff(eta, 2) != 0            # the printed eta^2 term is wrong ...
            assert sp.expand(paper_eq34(s, k, kp, q_coefficient=s.risk) - derived) == 0  # ... corrected


def _mc_dQ(p, ps, rho, Q, samples, seed):
    """Monte Carlo of the eta^2 coefficient of dQ_12/dalpha, <F_1 F_2>/eta^2 = (16/p^2) <(y - yhat)^2
    lambda_1 lambda_2>, at a stated state: mean and standard error."""
    cov = np.block([[np.eye(ps), rho.T], [rho, Q]])
    x = np.random.default_rng(seed).multivariate_normal(np.zeros(p + ps), cov, size=samples)
    u, lam = x[:, :ps], x[:, ps:]
    diff = (u ** 2).sum(1) / ps - (lam ** 2).sum(1) / p
    values = 16 / p ** 2 * diff ** 2 * lam[:, 0] * lam[:, 1]
    return values.mean(), values.std() / np.sqrt(samples)


def test_eq34_erratum_monte_carlo_evidence():
    """At p = 2, p* = 1, rho = (0.4, 0.2), Q = [[1, 0.3], [0.3, 0.8]] the eta^2 coefficient of
    dQ_12/dalpha is sampled directly; the derivation sits within 4 SE, the printed form far off."""
    s = isotropic_system(2, 1)
    rho, Q = np.array([[0.4], [0.2]]), np.array([[1.0, 0.3], [0.3, 0.8]])
    values = {s.rho[0][0]: 0.4, s.rho[1][0]: 0.2, s.Q[0][0]: 1.0, s.Q[0][1]: 0.3, s.Q[1][1]: 0.8}
    derived = float(sp.expand(s.rhs[s.Q[0][1]]).coeff(eta, 2).xreplace(values))
    printed = float(sp.expand(paper_eq34(s, 0, 1)).coeff(eta, 2).xreplace(values))
    mean, se = _mc_dQ(2, 1, rho, Q, 2_000_000, 3)
    assert abs(mean - derived) < 4 * se
    assert abs(mean - printed) > 20 * se


def paper_eq9(s, state):
    """Eq. (9), the norm-learning system in t = eta alpha, without its O(eps^2) remainders."""
    p, ps, Q, rho, trQ = _sums(s)
    for k in range(p):
        for l in range(ps):
            if state == rho[k][l]:
                return sp.Rational(4, p) * rho[k][l] * (1 + sp.Rational(2, ps) - sp.Rational(1, p) * (trQ + 2 * Q[k][k]))
        for kp in range(k, p):
            if state == Q[k][kp] and k != kp:
                return (sp.Rational(8, p) * Q[k][kp] * (1 - sp.Rational(1, p) * (trQ + Q[k][k] + Q[kp][kp]))
                        - sp.Rational(8, p ** 2) * Q[k][kp] * (Q[k][k] + Q[kp][kp]))
            if state == Q[k][kp]:
                return sp.Rational(8, p) * Q[k][k] * (1 - sp.Rational(1, p) * (trQ + 2 * Q[k][k]))
    raise KeyError(state)


def test_eq9_is_the_leading_order_of_the_gradient_flow(system):
    """rho and the off-diagonal Q scaled by eps: the derived flow to first order in eps is Eq. (9)."""
    s = system
    e = sp.Symbol("e")
    small = {x: e * x for row in s.rho for x in row}
    small.update({s.Q[k][j]: e * s.Q[k][j] for k in range(s.p) for j in range(k + 1, s.p)})
    flow = s.flow(1)
    for state in s.states:
        order = 0 if state in [s.Q[k][k] for k in range(s.p)] else 1
        lead = sp.expand(flow[state].xreplace(small)).coeff(e, order)
        printed = sp.expand(paper_eq9(s, state).xreplace(small)).coeff(e, order)
        assert sp.expand(lead - printed) == 0, state


def test_eq10_norm_fixed_point(system):
    assert norm_fixed_point(system) == sp.Rational(system.p, system.p + 2)


def test_eq12_rates_rho_agrees_offdiagonal_q_decays(system):
    """Erratum: omega_Q = 16/(p(p+2)) is printed as a growth rate (Eqs. 11, 12, 35, 36); the
    derived off-diagonal overlaps decay, dQ_kk'/dt = -16/(p(p+2)) Q_kk' (as the paper's own risk
    in section 7.3 has it, exp(-2 omega_Q t))."""
    p, ps = system.p, system.pstar
    rates = plateau_rates(system)
    assert rates["rho"] == sp.Rational(8, p * ps)
    if p > 1:
        assert rates["Q_offdiagonal"] == -sp.Rational(16, p * (p + 2))


def test_eq12_erratum_monte_carlo_evidence():
    """The increment of Q_12 sampled at the plateau (rho = 0, Q = Qbar I + 0.05 off the diagonal,
    p = 3, p* = 2): negative, as derived, by many standard errors."""
    p, ps, delta = 3, 2, 0.05
    Q = np.full((p, p), delta) + (p / (p + 2) - delta) * np.eye(p)
    cov = np.block([[np.eye(ps), np.zeros((ps, p))], [np.zeros((p, ps)), Q]])
    x = np.random.default_rng(4).multivariate_normal(np.zeros(p + ps), cov, size=2_000_000)
    u, lam = x[:, :ps], x[:, ps:]
    F = 4 / p * ((u ** 2).sum(1) / ps - (lam ** 2).sum(1) / p)[:, None] * lam  # F_k / eta
    values = F[:, 0] * lam[:, 1] + F[:, 1] * lam[:, 0]
    mean, se = values.mean(), values.std() / np.sqrt(len(values))
    s = isotropic_system(p, ps)
    point = {x: 0 for x in s.states}
    point.update({s.Q[k][j]: (Q[k, j]) for k in range(p) for j in range(k, p)})
    derived = float(s.flow(1)[s.Q[0][1]].xreplace(point))
    assert mean < -10 * se and abs(mean - derived) < 4 * se


def test_eq13_escape_law(system):
    """Eq. (13) in the paper's time t~ = eta alpha / p (learning rate scaled with p)."""
    p, ps = system.p, system.pstar
    law = escape_law(system).subs(T_SYM, p * T_SYM)
    printed = 4 * EPS_SYM ** 2 * (sp.exp(16 * T_SYM / ps) - 1) / (1 + sp.Rational(2, ps) - sp.Rational(p, p + 2))
    assert sp.simplify(law - printed) == 0


def test_escape_law_against_averaged_trajectories():
    """The average relative risk reduction of gradient-flow trajectories from 40 random rho(0) ~ N(0, eps^2)
    with Q = Qbar I follows the derived law while rho stays small (its O(eps^2) corrections aside)."""
    s = isotropic_system(3, 2)
    flow = compile_flow(s)
    eps, t = 1e-3, np.linspace(0, 3, 7)  # reduction below 1%: rho still small
    rng = np.random.default_rng(0)
    qbar = float(norm_fixed_point(s))
    reductions = []
    for _ in range(40):
        rho0 = eps * rng.normal(size=(3, 2))
        _, _, risk = trajectory(flow, rho0, qbar * np.eye(3), t)
        reductions.append((risk[0] - risk) / risk[0])
    mean = np.mean(reductions, 0)
    se = np.std(reductions, 0, ddof=1) / np.sqrt(40)
    law = sp.lambdify([T_SYM, EPS_SYM], escape_law(s))
    predicted = np.array([float(law(x, eps)) for x in t])
    assert np.all(np.abs(mean - predicted)[1:] < 4 * se[1:])


def test_eq16_eq20_eq21_zero_error_solutions(system):
    p, ps = system.p, system.pstar
    if ps > p:
        pytest.skip("no zero-error solution for p < p*")
    rng = np.random.default_rng(1)
    S, _ = np.linalg.qr(rng.normal(size=(p, ps)))
    rho, Q = np.sqrt(p / ps) * S, p / ps * S @ S.T
    flow = compile_flow(system)
    assert abs(flow.risk(flow.pack(rho, Q))) < 1e-12


@pytest.mark.parametrize("eta_value", [0.0, 0.01, 0.3])
def test_eq22_s_is_conserved_and_selects_the_closest_solution(eta_value):
    """S(t) = rho (rho^T rho)^{-1/2} stays at S(0) to the integrator's accuracy, with or without the
    eta^2 terms (the paper argues it for gradient flow); rho(t), Q(t) approach the solution of
    Eq. (19)-(21) as the risk vanishes, and stay away from the solutions of other initial states."""
    s = isotropic_system(6, 3)
    flow = compile_flow(s)
    rng = np.random.default_rng(1)
    rho0 = 0.01 * rng.normal(size=(6, 3))
    t = np.linspace(0, 300, 61)
    rho, Q, risk = trajectory(flow, rho0, np.eye(6), t, eta=eta_value)
    S0 = s_matrix(rho0)
    assert max(np.abs(s_matrix(r) - S0).max() for r in rho) < 1e-10
    rho_bar, Q_bar = closest_solution(rho0, 6, 3)
    distance = np.abs(rho[-1] - rho_bar).max()
    assert risk[-1] < 1e-4 and distance < np.sqrt(risk[-1])
    other, _ = closest_solution(0.01 * rng.normal(size=(6, 3)), 6, 3)
    assert np.abs(rho[-1] - other).max() > 100 * distance
    assert np.abs(Q[-1] - Q_bar).max() < 3 * np.sqrt(risk[-1])


def paper_eq24(W, Wstar, p, ps):
    Q, rho = W @ W.T, W @ Wstar.T
    return np.array([-4 / p * (W[m] + 2 / ps * rho[m] @ Wstar - 1 / p * sum(Q[k, k] * W[m] + 2 * Q[k, m] * W[k]
                                                                          for k in range(p))) for m in range(p)])


def paper_eq25(W, Wstar, p, ps):
    n = W.shape[1]
    Q = W @ W.T
    blocks = [[-4 / p * (-2 / p * (Q[b, a] * np.eye(n) + np.outer(W[b], W[a]) + np.outer(W[a], W[b]))
                         + (a == b) * ((1 - np.trace(Q) / p) * np.eye(n) + 2 / ps * Wstar.T @ Wstar
                                       - 2 / p * W.T @ W)) for b in range(p)] for a in range(p)]
    return np.block(blocks)


@pytest.mark.parametrize("p, ps", [(2, 1), (3, 2), (4, 2)])
def test_eq24_eq25_gradient_and_hessian_agree(p, ps):
    n = 7
    rng = np.random.default_rng(2)
    W = rng.normal(size=(p, n)) / np.sqrt(n)
    Wstar = np.linalg.qr(rng.normal(size=(n, ps)))[0].T
    rq = risk_quadratic(isotropic_system(p, ps))
    assert np.allclose(risk_gradient(rq, W, Wstar), paper_eq24(W, Wstar, p, ps), atol=1e-12)
    assert np.allclose(population_hessian(rq, W, Wstar), paper_eq25(W, Wstar, p, ps), atol=1e-12)


def test_hessian_against_finite_differences():
    """The derived Hessian against second differences of the population risk written here directly:
    sigma - zeta = x^T A x with A = W^T W / p - W*^T W* / p*, and for x ~ N(0, I) Isserlis gives
    E[(x^T A x)^2] = (tr A)^2 + 2 tr A^2 (no derived expression is used on this side)."""
    p, ps, n = 3, 2, 5
    rng = np.random.default_rng(3)
    W = rng.normal(size=(p, n))
    Wstar = np.linalg.qr(rng.normal(size=(n, ps)))[0].T
    H = population_hessian(risk_quadratic(isotropic_system(p, ps)), W, Wstar)

    def risk(w):
        A = w.reshape(p, n).T @ w.reshape(p, n) / p - Wstar.T @ Wstar / ps
        return np.trace(A) ** 2 + 2 * np.trace(A @ A)

    h, w0, m = 1e-4, W.ravel(), p * n
    unit = np.eye(m) * h
    fd = np.array([[(risk(w0 + unit[i] + unit[j]) - risk(w0 + unit[i] - unit[j]) - risk(w0 - unit[i] + unit[j])
                     + risk(w0 - unit[i] - unit[j])) / (4 * h * h) for j in range(m)] for i in range(m)])
    # measured difference 2.5e-6 (the O(h^2) error of the differences) on entries up to 56: 20x margin
    assert np.max(np.abs(H - fd)) < 5e-5


@pytest.mark.parametrize("p, ps, n", [(2, 1, 6), (3, 2, 9), (4, 2, 12), (3, 3, 10)])
def test_eq26_to_eq30_stationary_classes_and_counts(p, ps, n):
    """Every class is stationary (derived gradient zero); analytic and numerical spectra agree with
    multiplicities; tabula rasa is a maximum; the plateau class r = p has #neg/#null =
    p*/(N - p* - p/2 - 1/2) (Eq. 29); at the zero-error class s = p* there are p*(N - p*) + p*(p*+1)/2
    positive eigenvalues and p p* - p*(p*+1)/2 + (N - p*)(p - p*) null ones."""
    classes = {c.cls.name: c for c in landscape(p, ps, n, seed=5)}
    for c in classes.values():
        assert c.gradient_norm < 1e-12
        exact = sorted((float(v), m) for v, m in c.exact.items())
        assert len(exact) == len(c.numerical)
        for (ev, em), (nv, nm) in zip(exact, c.numerical):
            assert abs(ev - nv) < 1e-8 and em == nm
        assert sum(c.exact.values()) == p * n

    def counts(c):
        neg = sum(m for v, m in c.exact.items() if v < 0)
        null = sum(m for v, m in c.exact.items() if v == 0)
        return neg, null, p * n - neg - null

    assert counts(classes["tabula rasa"])[0] == p * n
    neg, null, _ = counts(classes[f"uncorrelated r={p}"])
    assert sp.Rational(neg, null) == sp.Rational(ps, 1) / (n - ps - sp.Rational(p, 2) - sp.Rational(1, 2))
    if ps <= p:
        neg, null, pos = counts(classes[f"correlated s={ps}"])
        assert neg == 0
        assert pos == ps * (n - ps) + ps * (ps + 1) // 2
        assert null == p * ps - ps * (ps + 1) // 2 + (n - ps) * (p - ps)


@pytest.mark.parametrize("p, ps, n", [(4, 2, 10), (3, 3, 8), (5, 2, 9), (2, 1, 6)])
def test_dof_and_solution_manifold_dimension(p, ps, n):
    """Section 7.5: DOF = N p - p(p-1)/2 (p <= N), N(N+1)/2 (p > N); the zero-error manifold has
    dimension p p* - p*(p*+1)/2, and (N - p*)(p - p*) further first-order flat directions."""
    assert student_dof(p, n) == n * p - p * (p - 1) // 2
    assert student_dof(n + 2, n) == n * (n + 1) // 2
    manifold, flat = zero_error_dimensions(p, ps, n)
    assert manifold == p * ps - ps * (ps + 1) // 2
    assert flat - manifold == (n - ps) * (p - ps)


def test_eq38_eq39_gradient_flow_form(system):
    """d rho/dt = c(t) rho - (8/p^2) Q rho and dQ/dt = a(t) Q + 16/(p p*) rho rho^T - 16/p^2 Q^2 with
    c = (4/p)(1 + 2/p* - tr Q/p), a = (8/p)(1 - tr Q/p)."""
    p, ps, Q, rho, trQ = _sums(system)
    flow = system.flow(1)
    Qm, Rm = sp.Matrix(Q), sp.Matrix(rho)
    c = sp.Rational(4, p) * (1 + sp.Rational(2, ps) - trQ / p)
    a = sp.Rational(8, p) * (1 - trQ / p)
    drho = c * Rm - sp.Rational(8, p ** 2) * Qm * Rm
    dQ = a * Qm + sp.Rational(16, p * ps) * Rm * Rm.T - sp.Rational(16, p ** 2) * Qm * Qm
    for k in range(p):
        for l in range(ps):
            assert sp.expand(flow[rho[k][l]] - drho[k, l]) == 0
        for j in range(k, p):
            assert sp.expand(flow[Q[k][j]] - dQ[k, j]) == 0


def test_solve_cli_quadratic_matches_the_moment_flow(tmp_path, capsys):
    """`exactdyn solve --activation quadratic` (eigenmode basis) against the isotropic moment-basis
    flow of this module: two bases, two integrations, one curve."""
    import json

    from exactdyn.cli import main

    rho = [[0.05, -0.02], [0.01, 0.03], [-0.04, 0.02]]
    init = tmp_path / "init.json"
    init.write_text(json.dumps({"eigenvalues": [1], "r": [rho], "q": [np.eye(3).tolist()], "t": [np.eye(2).tolist()]}))
    assert main(["solve", "--activation", "quadratic", "--K", "3", "--M", "2", "--eta", "0.3", "--init", str(init),
                 "--alpha", "0,1,5,20", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    flow = compile_flow(isotropic_system(3, 2))
    # the reference at a tolerance tighter than the digits the engine claims
    _, _, risk = trajectory(flow, np.array(rho), np.eye(3), 0.3 * np.array([0, 1, 5, 20.0]), eta=0.3,
                            rtol=1e-14, atol=1e-16)
    assert out["rigorous"] is False and min(out["digits"]) >= 6
    for value, d, r in zip(out["eps_g"], out["digits"], risk):
        assert abs(float(value) - r) <= 10.0 ** (1 - d) * abs(r)
