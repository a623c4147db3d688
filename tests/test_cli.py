"""Bad input: one line on stderr, exit status 2, never a traceback."""
from decimal import Decimal
import json
import subprocess
import sys

import numpy as np
import pytest

from exactdyn.cli import main

BAD = {
    "L zero": ["spectrum", "--L", "0"],
    "L negative": ["spectrum", "--L", "-3"],
    "L not a number": ["spectrum", "--L", "many"],
    "L fractional": ["spectrum", "--L", "2.5"],
    "beta -1": ["spectrum", "--L", "4", "--beta", "-1"],
    "beta below -1": ["spectrum", "--L", "4", "--beta", "-2.5"],
    "beta nan": ["spectrum", "--L", "4", "--beta", "nan"],
    "beta inf": ["spectrum", "--L", "4", "--beta", "inf"],
    "beta text": ["spectrum", "--L", "4", "--beta", "one"],
    "beta empty": ["spectrum", "--L", "4", "--beta", ""],
    "unknown format": ["spectrum", "--L", "4", "--format", "xml"],
    "repeated eigenvalue": ["spectrum", "--eigenvalues", "1,1"],
    "negative eigenvalue": ["spectrum", "--eigenvalues", "1,-1"],
    "weights not summing to one": ["spectrum", "--eigenvalues", "1,2", "--weights", "1/2,1/3"],
    "weights without eigenvalues": ["spectrum", "--L", "3", "--weights", "1/3,1/3,1/3"],
    "both spectra": ["spectrum", "--L", "3", "--eigenvalues", "1,2"],
    "no spectrum": ["spectrum"],
    "zero denominator": ["spectrum", "--eigenvalues", "1/0,2"],
    "unknown activation": ["derive", "--activation", "swish"],
    "K zero": ["derive", "--K", "0"],
    "M zero": ["derive", "--M", "0"],
    "K huge": ["derive", "--K", "1000"],
    "L zero in derive": ["derive", "--L", "0"],
    "unknown output weights": ["derive", "--output-weights", "half"],
    "unknown derive format": ["derive", "--format", "pdf"],
    "constant polynomial": ["derive", "--poly", "1"],
    "polynomial text": ["derive", "--poly", "0,x**2"],
    "negative loss factor": ["derive", "--loss-factor", "-1"],
    "unknown command": ["integrate"],
    "no command": [],
    "unknown option": ["spectrum", "--L", "3", "--colour"],
    "negative alpha": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1,-2"],
    "alpha text": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "soon"],
    "alpha nan": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "nan"],
    "eta zero": ["solve", "--L", "4", "--eta", "0", "--alpha", "1"],
    "eta negative": ["solve", "--L", "4", "--eta", "-0.1", "--alpha", "1"],
    "eta missing": ["solve", "--L", "4", "--alpha", "1"],
    "unknown route": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1", "--route", "fast"],
    "unknown solve format": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1", "--format", "xlsx"],
    "solve tanh beyond its scope": ["solve", "--activation", "tanh", "--L", "8", "--eta", "0.5", "--alpha", "1",
                                    "--sigma-J", "0.1"],
    "too many trainable": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1", "--trainable", "5"],
    "random subspace without N": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1", "--random-subspace", "1/4"],
    "random subspace and trainable": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1", "--random-subspace", "1/4",
                                      "--N", "64", "--trainable", "2"],
    "random subspace fraction": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1", "--random-subspace", "1/3",
                                 "--N", "64"],
    "linear N alone": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1", "--N", "64"],
    "missing init file": ["solve", "--init", "/nonexistent/init.json", "--eta", "0.5", "--alpha", "1"],
    "digits zero": ["solve", "--L", "4", "--eta", "0.5", "--alpha", "1", "--digits", "0"],
    "simulate N missing": ["simulate", "--L", "4", "--eta", "0.5", "--alpha", "1"],
    "simulate N zero": ["simulate", "--L", "4", "--eta", "0.5", "--alpha", "1", "--N", "0"],
    "simulate eta zero": ["simulate", "--L", "4", "--eta", "0", "--alpha", "1", "--N", "64"],
    "simulate negative alpha": ["simulate", "--L", "4", "--eta", "0.5", "--alpha", "-1", "--N", "64"],
    "simulate unknown activation": ["simulate", "--activation", "swish", "--L", "4", "--eta", "0.5",
                                    "--alpha", "1", "--N", "64"],
    "simulate unknown method": ["simulate", "--L", "4", "--eta", "0.5", "--alpha", "1", "--N", "64", "--method", "fast"],
    "simulate unknown format": ["simulate", "--L", "4", "--eta", "0.5", "--alpha", "1", "--N", "64",
                                "--format", "text"],
    "demo too few seeds": ["demo", "--seeds", "1"],
}

BAD_FILES = {
    "not json": "this is not json",
    "empty": "",
    "a list": "[1, 2]",
    "nan": '{"eigenvalues": [NaN], "r": [[[0]]], "q": [[[1]]], "t": [[[1]]]}',
    "missing q": '{"eigenvalues": [1], "r": [[[0]]], "t": [[[1]]]}',
    "unknown key": '{"eigenvalues": [1], "r": [[[0]]], "q": [[[1]]], "t": [[[1]]], "extra": 1}',
    "ascending": '{"eigenvalues": [1, 2], "r": [[[0]], [[0]]], "q": [[[1]], [[1]]], "t": [[[1]], [[1]]]}',
    "wrong group count": '{"eigenvalues": [2, 1], "r": [[[0]]], "q": [[[1]]], "t": [[[1]]]}',
    "string number": '{"eigenvalues": ["two"], "r": [[[0]]], "q": [[[1]]], "t": [[[1]]]}',
    "boolean": '{"eigenvalues": [true], "r": [[[0]]], "q": [[[1]]], "t": [[[1]]]}',
    "asymmetric q": '{"eigenvalues": [1], "r": [[[0], [0]]], "q": [[[1, 0.1], [0.2, 1]]], "t": [[[1]]]}',
    "negative diagonal": '{"eigenvalues": [1], "r": [[[0]]], "q": [[[-1]]], "t": [[[1]]]}',
    "weights sum": '{"eigenvalues": [2, 1], "weights": [0.5, 0.6], "r": [[[0]], [[0]]], "q": [[[1]], [[1]]], "t": [[[1]], [[1]]]}',
    "shape mismatch": '{"eigenvalues": [1], "r": [[[0, 0]]], "q": [[[1]]], "t": [[[1]]]}',
    "wider than linear": '{"eigenvalues": [1], "r": [[[0], [0]]], "q": [[[1, 0], [0, 1]]], "t": [[[1]]]}',
}


@pytest.mark.parametrize("argv", BAD.values(), ids=BAD.keys())
def test_bad_input_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("exactdyn: error: ") and "\n" not in err and "Traceback" not in err
    assert captured.out == ""


@pytest.mark.parametrize("text", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_init_files_one_line_exit_2(text, tmp_path, capsys):
    path = tmp_path / "init.json"
    path.write_text(text)
    assert main(["solve", "--init", str(path), "--eta", "0.5", "--alpha", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("exactdyn: error: ") and "\n" not in err and "Traceback" not in err


def test_solve_from_init_file_matches_expected_state(tmp_path, capsys):
    init = {"eigenvalues": ["108/49", "27/49", "12/49"], "r": [[[0]]] * 3, "q": [[["1/3"]]] * 3,
            "t": [[["1/3"]]] * 3}
    path = tmp_path / "init.json"
    path.write_text(json.dumps(init))
    assert main(["solve", "--init", str(path), "--eta", "0.5", "--alpha", "0,2", "--format", "json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert main(["solve", "--L", "3", "--beta", "1", "--eta", "0.5", "--sigma-J", "1", "--alpha", "0,2",
                 "--format", "json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert from_file["eps_g"] == expected["eps_g"] and from_file["eps_g"][0] == "1.00000000000000000000000000000"


def test_unstable_run_warns(capsys):
    assert main(["solve", "--L", "4", "--eta", "2.5", "--alpha", "0,5", "--digits", "8", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "past the stability limit" in captured.err
    data = json.loads(captured.out)
    assert data["status"] == "unstable" and data["rigorous"] is True and data["digits"] == [8, 8]
    assert data["metadata"]["stability_limit"].startswith("2.0")


def test_solve_outputs(tmp_path, capsys):
    png = tmp_path / "curve.png"
    assert main(["solve", "--L", "8", "--eta", "0.5", "--alpha", "0,1,10", "--format", "csv", "--plot", str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "alpha,eps_g" and len(lines) == 4 and png.stat().st_size > 5000
    assert main(["solve", "--L", "8", "--eta", "0.5", "--alpha", "1,10", "--approximations", "--format", "json"]) == 0
    meta = json.loads(capsys.readouterr().out)["metadata"]
    assert {"small_eta", "integral", "power_law_window", "local_exponent"} <= set(meta)


def test_solve_erf_json_and_init_file(tmp_path, capsys):
    assert main(["solve", "--activation", "erf", "--K", "2", "--M", "2", "--L", "2", "--eta", "0.5",
                 "--sigma-J", "0.3", "--alpha", "0,1,5", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert min(data["digits"]) >= 5 and len(data["eps_g"]) == 3 and data["rigorous"] is False
    assert data["status"] == "ok" and data["working_precision_bits"] == 53
    init = {"eigenvalues": [2, 1], "r": [[[0.01, 0], [0, 0.02]]] * 2, "q": [[[0.1, 0], [0, 0.1]]] * 2,
            "t": [[[0.5, 0], [0, 0.5]]] * 2}
    path = tmp_path / "init.json"
    path.write_text(json.dumps(init))
    assert main(["solve", "--activation", "erf", "--K", "2", "--M", "2", "--init", str(path), "--eta", "0.5",
                 "--alpha", "0,2", "--format", "json", "--overlaps"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["overlaps"]["q"][0][0][0][0] == pytest.approx(0.1)  # [alpha][group][i][j], as simulate writes
    assert main(["solve", "--activation", "erf", "--K", "3", "--M", "2", "--init", str(path), "--eta", "0.5",
                 "--alpha", "0,2"]) == 2
    assert "x 2" in capsys.readouterr().err


def test_console_script_and_module_entry_points():
    for cmd in (["exactdyn"], [sys.executable, "-m", "exactdyn"]):
        ok = subprocess.run(cmd + ["spectrum", "--L", "3", "--beta", "2", "--format", "json"],
                            capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, ok.stderr
        data = json.loads(ok.stdout)
        assert set(data) >= {"eigenvalues", "coefficients", "traces"} and len(data["traces"]) == 4
        bad = subprocess.run(cmd + ["spectrum", "--L", "0"], capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_spectrum_text_and_irrational_json(capsys):
    assert main(["spectrum", "--L", "3", "--beta", "1"]) == 0
    assert "power law L=3" in capsys.readouterr().out
    assert main(["spectrum", "--L", "3", "--beta", "0.5", "--digits", "25", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exact"] is False and all(len(x.replace(".", "").lstrip("0")) <= 26 for x in data["eigenvalues"])


def test_simulate_output_feeds_solve(tmp_path, capsys):
    """simulate's initial overlaps are an init file; solve started from them predicts the SGD mean."""
    assert main(["simulate", "--L", "4", "--eta", "0.5", "--sigma-J", "0.5", "--alpha", "0,1,2", "--N", "2048",
                 "--seeds", "6", "--init-seed", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"alpha", "eps_g", "eps_g_stderr", "eps_g_seeds", "initial", "metadata"}
    assert data["eps_g_stderr"][0] == 0  # one shared initial draw
    init = tmp_path / "init.json"
    init.write_text(json.dumps(data["initial"][0]))
    assert main(["solve", "--init", str(init), "--eta", "0.5", "--alpha", "1,2", "--digits", "10",
                 "--format", "json"]) == 0
    exact = [float(x) for x in json.loads(capsys.readouterr().out)["eps_g"]]
    for e, m, s in zip(exact, data["eps_g"][1:], data["eps_g_stderr"][1:]):
        assert abs(e - m) < 3 * s
    assert main(["simulate", "--L", "3", "--eta", "0.5", "--alpha", "0,1", "--N", "100"]) == 2
    assert "does not split" in capsys.readouterr().err
    assert main(["simulate", "--L", "2", "--eta", "0.5", "--alpha", "2,1", "--N", "100"]) == 2


def test_solve_random_subspace(capsys):
    """The mean of the per-draw exact curves, printed with the digits the spread over draws allows,
    and each draw's alpha -> infinity error above the N -> infinity, small-eta limit's order."""
    from exactdyn import power_law
    from exactdyn.numeric.linear import random_basis_curve

    argv = ["solve", "--L", "4", "--eta", "0.5", "--alpha", "0,2,1000", "--random-subspace", "1/4", "--N", "256",
            "--draws", "3", "--format", "json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    meta = data["metadata"]
    assert meta["trainable_dimension"] == 64 and len(meta["eps_g_limit_per_draw"]) == 3
    curve = random_basis_curve(power_law(4, 1), "1/4", "0.5", [0, 2, 1000], N=256, draws=range(3))
    for printed, mean, se in zip(data["eps_g"], curve.eps_g, meta["eps_g_stderr"]):
        last_place = 10.0 ** Decimal(printed).as_tuple().exponent
        assert abs(float(printed) - mean) <= last_place / 2
        assert float(se) == 0 or last_place >= float(se) / 10  # no digit finer than the spread allows


def test_unverified_points_print_as_such_and_exit_3(capsys, monkeypatch):
    """A point without a verified digit: 'unverified' in text and CSV, null in JSON, exit status 3."""
    from fractions import Fraction
    import importlib

    from exactdyn.problem import Solution, Status

    solve_module = importlib.import_module("exactdyn.solve")  # the module: exactdyn.solve is the function

    partial = Solution((Fraction(0), Fraction(1)), (0.25, 0.125), (15, 0), False, Status.PARTIAL,
                       "1 point(s) could not be verified", "float64 (stand-in)", 53)
    monkeypatch.setattr(solve_module, "solve", lambda *args, **kwargs: partial)
    argv = ["solve", "--activation", "erf", "--L", "2", "--eta", "0.5", "--sigma-J", "0.3", "--alpha", "0,1"]
    assert main(argv) == 3
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].split() == ["1", "unverified"] and "could not be verified" in captured.err
    assert "verified digits" in captured.out and "certified" not in captured.out
    assert main(argv + ["--format", "json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["eps_g"] == ["0.25", None] and data["digits"] == [15, 0] and data["status"] == "partial"
    assert data["rigorous"] is False
    assert main(argv + ["--format", "csv"]) == 3
    assert capsys.readouterr().out.splitlines()[-1] == "1,unverified"
