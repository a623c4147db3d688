"""`exactdyn check`: accepts exactdyn's own simulations and ODE output, rejects planted bugs."""
import dataclasses
import json

import numpy as np
import pytest
from scipy.special import erf

from exactdyn.symbolic.cache import derive
from exactdyn.cli import main
from exactdyn.symbolic.hierarchy import ETA, Structure


def _run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _simulate(capsys, tmp_path, name, argv):
    code, out, err = _run(capsys, ["simulate", *argv])
    assert code == 0, err
    path = tmp_path / name
    path.write_text(out)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("model", [
    ["--activation", "linear", "--L", "4", "--eta", "0.8", "--sigma-J", "0.5"],
    ["--activation", "erf", "--K", "2", "--M", "2", "--L", "2", "--eta", "0.5", "--sigma-J", "0.5"],
    ["--activation", "quadratic", "--K", "3", "--M", "2", "--L", "1", "--eta", "0.3", "--sigma-J", "0.5"],
])
def test_check_accepts_simulate_output(capsys, tmp_path, model):
    path = _simulate(capsys, tmp_path, "sim.json", [*model, "--alpha", "0,0.5,1,2", "--N", "2048", "--seeds", "8",
                                                    "--overlaps"])
    code, out, err = _run(capsys, ["check", str(path)])
    assert code == 0, out + err
    assert "verdict: consistent" in out and "eps_g" in out and "\nq " in out


@pytest.fixture(scope="module")
def erf_runs(tmp_path_factory):
    """Two erf simulations with one shared initial draw per file: output weights one and sqrt."""
    from exactdyn.cli import main as run_main
    import contextlib
    import io

    folder = tmp_path_factory.mktemp("erf")
    paths = {}
    for weights in ("one", "sqrt"):
        buf = io.StringIO()
        with contextlib.redirect_stderr(io.StringIO()):
            code = run_main(["simulate", "--activation", "erf", "--K", "2", "--M", "2", "--L", "2", "--eta", "0.5",
                             "--sigma-J", "0.5", "--alpha", "0,0.5,1,2,3", "--N", "4096", "--seeds", "16",
                             "--init-seed", "7", "--output-weights", weights], out=buf)
        assert code == 0
        paths[weights] = folder / f"{weights}.json"
        paths[weights].write_text(buf.getvalue())
    return paths


@pytest.mark.slow
def test_check_rejects_a_curve_scaled_by_five_percent(capsys, tmp_path, erf_runs):
    data = json.loads(erf_runs["one"].read_text())
    code, out, _ = _run(capsys, ["check", str(erf_runs["one"])])
    assert code == 0, out
    data["eps_g"] = [1.05 * e for e in data["eps_g"]]
    bad = tmp_path / "scaled.json"
    bad.write_text(json.dumps(data))
    code, out, _ = _run(capsys, ["check", str(bad)])
    assert code == 1 and "NOT consistent" in out and "too large" in out


@pytest.mark.slow
def test_check_rejects_a_wrong_output_weight_convention(capsys, tmp_path, erf_runs):
    data = json.loads(erf_runs["sqrt"].read_text())
    code, out, _ = _run(capsys, ["check", str(erf_runs["sqrt"])])
    assert code == 0, out
    data["metadata"]["output_weights"] = "one"  # the other code claims weights one but ran 1/sqrt(K)
    bad = tmp_path / "claims_one.json"
    bad.write_text(json.dumps(data))
    code, out, _ = _run(capsys, ["check", str(bad)])
    assert code == 1 and "NOT consistent" in out


@pytest.mark.slow
def test_check_reads_csv_with_init_and_options(capsys, tmp_path, erf_runs):
    data = json.loads(erf_runs["one"].read_text())
    init = tmp_path / "init.json"
    init.write_text(json.dumps(data["initial"][0]))
    csv = tmp_path / "curve.csv"
    csv.write_text("# written by another code\nalpha,eps_g,eps_g_stderr\n"
                   + "".join(f"{a},{e!r},{s!r}\n" for a, e, s in zip(data["alpha"], data["eps_g"], data["eps_g_stderr"])))
    argv = ["check", str(csv), "--init", str(init), "--activation", "erf", "--eta", "0.5", "--N", "4096",
            "--seeds", "16"]
    code, out, err = _run(capsys, argv)
    assert code == 0, out + err
    code, out, err = _run(capsys, argv[:-4] + ["--N", "4096", "--seeds", "16", "--output-weights", "sqrt"])
    assert code == 1, out + err


def _sgd_erf(N, seeds, eta, alpha, *, teacher_scale):
    """An independent one-pass SGD of the erf committee machine (K = M = 2, L = 2, eigenbasis), as
    another code would write it; teacher_scale = sqrt(N) plants a teacher field missing its 1/sqrt(N)."""
    lam = np.array([4 / 3, 2 / 3])
    diag = np.repeat(lam, N // 2)
    rng = np.random.default_rng(5)
    B, J = rng.normal(size=(2, N)), 0.5 * rng.normal(size=(2, N))
    halves = [slice(0, N // 2), slice(N // 2, N)]
    initial = {"eigenvalues": lam.tolist(), "r": [(J[:, h] @ B[:, h].T / N).tolist() for h in halves],
               "q": [(J[:, h] @ J[:, h].T / N).tolist() for h in halves],
               "t": [(B[:, h] @ B[:, h].T / N).tolist() for h in halves]}
    g = lambda x: erf(x / np.sqrt(2))
    dg = lambda x: np.sqrt(2 / np.pi) * np.exp(-x * x / 2)
    curves = []
    for s in range(seeds):
        W, data, eps, t = J.copy(), np.random.default_rng([s, 11]), [], 0
        for a in alpha:
            while t < round(a * N):
                xi = np.sqrt(diag) * data.standard_normal(N)
                x = W @ xi / np.sqrt(N)
                zeta = g(B @ xi * teacher_scale / np.sqrt(N)).sum()
                W += eta / np.sqrt(N) * np.outer(dg(x) * (zeta - g(x).sum()), xi)
                t += 1
            test = np.sqrt(diag) * data.standard_normal((4000, N))
            eps.append(0.5 * np.mean((g(test @ W.T / np.sqrt(N)).sum(1)
                                      - g(test @ B.T * teacher_scale / np.sqrt(N)).sum(1)) ** 2))
        curves.append(eps)
    curves = np.array(curves)
    return {"alpha": alpha, "eps_g": curves.mean(0).tolist(),
            "eps_g_stderr": (curves.std(0, ddof=1) / np.sqrt(seeds)).tolist(), "initial": initial,
            "metadata": {"activation": "erf", "eta": eta, "N": N, "seeds": seeds}}


@pytest.mark.slow
def test_check_rejects_a_teacher_missing_its_inverse_sqrt_n(capsys, tmp_path):
    """The independent simulator agrees with exactdyn; with the planted bug it does not.  Its eps_g
    is a test-set estimate (4000 samples), whose spread the seeds' standard error includes."""
    for scale, expect in ((1.0, 0), (np.sqrt(1024), 1)):
        path = tmp_path / "other.json"
        path.write_text(json.dumps(_sgd_erf(1024, 6, 0.5, [0, 1, 2], teacher_scale=scale)))
        code, out, err = _run(capsys, ["check", str(path)])
        assert code == expect, out + err


def _write_ode(path, structure, init_path, eta, alpha, eta2_factor):
    """Another ODE code's output: exactdyn's derived system with its eta^2 terms times eta2_factor."""
    from exactdyn.io.initfile import read_initial
    from exactdyn.numeric import engine
    from exactdyn.numeric.overlaps import assign, overlap_table
    from exactdyn.problem import exact

    system = derive(structure, "mode")
    # every right-hand side is a polynomial of degree 2 in eta
    buggy = dataclasses.replace(system, rhs=tuple(e + (eta2_factor - 1) * ETA ** 2 * e.diff(ETA, 2) / 2
                                                  for e in system.rhs))
    init = read_initial(init_path)
    lam, frac = [[exact(x) for x in xs] for xs in (init.spectrum.eigenvalues, init.spectrum.weights)]
    y0, params = assign(buggy, overlap_table(lam, frac, init.r, init.q, init.t, exact(eta)))
    traj = engine.integrate_float(engine.compile_system(buggy), y0, params, alpha, rtol=1e-12)
    path.write_text(json.dumps({"alpha": alpha, "eps_g": list(traj.eps_g),
                                "metadata": {"activation": "erf", "eta": eta}}))


def test_check_rejects_a_wrong_eta_squared_factor(capsys, tmp_path):
    init = tmp_path / "init.json"
    init.write_text(json.dumps({"eigenvalues": [2, 1], "weights": ["1/3", "2/3"],
                                "r": [[[0.1, 0.0], [0.0, 0.05]], [[0.02, 0.1], [0.0, 0.0]]],
                                "q": [[[0.2, 0.01], [0.01, 0.3]], [[0.3, 0.0], [0.0, 0.4]]],
                                "t": [[[0.33, 0], [0, 0.33]], [[0.67, 0], [0, 0.67]]]}))
    structure = Structure.named("erf", 2, 2, 2)
    for factor, expect in ((1, 0), (2, 1), (1.01, 1)):
        path = tmp_path / f"ode{factor}.json"
        _write_ode(path, structure, init, 0.9, [0, 1, 3, 10], factor)
        code, out, err = _run(capsys, ["check", str(path), "--init", str(init)])
        assert code == expect, (factor, out + err)
    assert "relative deviation" in out


def test_check_accepts_solve_output(capsys, tmp_path):
    init = tmp_path / "init.json"
    init.write_text(json.dumps({"eigenvalues": [1], "r": [[[0.1]]], "q": [[[0.5]]], "t": [[[1]]]}))
    code, out, err = _run(capsys, ["solve", "--activation", "erf", "--K", "1", "--M", "1", "--eta", "0.5",
                                   "--init", str(init), "--alpha", "0,1,5", "--digits", "8", "--format", "json"])
    assert code == 0, err
    path = tmp_path / "solve.json"
    path.write_text(out)
    code, out, err = _run(capsys, ["check", str(path), "--init", str(init)])
    assert code == 0, out + err
    assert "vouches for" in out
