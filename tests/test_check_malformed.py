"""Malformed trajectory files: each gets one clear line on stderr and exit status 2, never a traceback."""
import copy
import json
import os

import pytest

from exactdyn.cli import main

INIT = {"eigenvalues": [2, 1], "weights": ["1/3", "2/3"], "r": [[[0.1]], [[0.0]]], "q": [[[0.1]], [[0.2]]],
        "t": [[[0.33]], [[0.67]]]}
GOOD = {"alpha": [0, 1, 2], "eps_g": [0.3, 0.2, 0.1], "eps_g_stderr": [0.01, 0.01, 0.01],
        "overlaps": {"r": [[[[0.1]], [[0.0]]]] * 3, "q": [[[[0.1]], [[0.2]]]] * 3},
        "R1": [[[0.2]]] * 3, "initial": INIT, "metadata": {"activation": "linear", "eta": 0.5, "N": 1000}}
CSV = "alpha,eps_g\n0,0.3\n1,0.2\n"


def mutated(path, value):
    """GOOD with the entry at `path` (a tuple of keys and indices) replaced; value DELETE removes it."""
    data = copy.deepcopy(GOOD)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(data)


DELETE = object()

JSON_CASES = {
    "not JSON": ("{alpha: [0, 1]}", "not valid JSON"),
    "truncated JSON": (json.dumps(GOOD)[:-5], "not valid JSON"),
    "a list": ("[1, 2, 3]", "must hold a JSON object"),
    "a number": ("42", "must hold a JSON object"),
    "NaN in eps_g": (mutated(("eps_g",), "NANMARK").replace('"NANMARK"', "[0.3, NaN, 0.1]"), "non-finite number NaN"),
    "Infinity in alpha": (json.dumps(GOOD).replace('"alpha": [0, 1, 2]', '"alpha": [0, 1, Infinity]'),
                          "non-finite number Infinity"),
    "overflowing number": (json.dumps(GOOD).replace("0.2, 0.1]", "1e999, 0.1]"), "is not finite"),
    "unknown key": (mutated(("eps",), [1, 2, 3]), "unknown key(s) eps"),
    "missing alpha": (mutated(("alpha",), DELETE), "missing key 'alpha'"),
    "alpha a string": (mutated(("alpha",), "0,1,2"), "'alpha' must be a list"),
    "alpha empty": (mutated(("alpha",), []), "no alpha values"),
    "alpha decreasing": (mutated(("alpha",), [0, 2, 1]), "strictly increasing"),
    "alpha repeated": (mutated(("alpha",), [0, 1, 1]), "strictly increasing"),
    "alpha negative": (mutated(("alpha",), [-1, 1, 2]), "alpha must be >= 0"),
    "alpha boolean": (mutated(("alpha",), [0, True, 2]), "got a boolean"),
    "alpha null": (mutated(("alpha",), [0, None, 2]), "must be a number, got NoneType"),
    "alpha text entry": (mutated(("alpha",), [0, "one", 2]), "must be a number, got text"),
    "alpha expression": (mutated(("alpha",), [0, "1+1", 2]), "must be a number, got text"),
    "eps_g too short": (mutated(("eps_g",), [0.3, 0.2]), "eps_g has 2 entries, expected 3"),
    "eps_g too long": (mutated(("eps_g",), [0.3, 0.2, 0.1, 0.0]), "eps_g has 4 entries, expected 3"),
    "eps_g a number": (mutated(("eps_g",), 0.3), "eps_g must be a list"),
    "eps_g nested": (mutated(("eps_g",), [[0.3], [0.2], [0.1]]), "eps_g[0] must be a number"),
    "eps_g object entry": (mutated(("eps_g", 1), {"v": 1}), "eps_g[1] must be a number, got dict"),
    "stderr negative": (mutated(("eps_g_stderr", 0), -0.1), "eps_g_stderr must be >= 0"),
    "stderr wrong length": (mutated(("eps_g_stderr",), [0.1]), "must be a list of 3 numbers"),
    "stderr without eps_g": (mutated(("eps_g",), DELETE), "'eps_g_stderr' without 'eps_g'"),
    "nothing to check": (json.dumps({k: v for k, v in GOOD.items()
                                     if k not in ("eps_g", "eps_g_stderr", "overlaps", "R1")}), "nothing to check"),
    "overlaps not an object": (mutated(("overlaps",), [1, 2]), "'overlaps' must be an object"),
    "overlaps unknown block": (mutated(("overlaps", "t"), []), "'overlaps' must be an object with keys"),
    "overlaps wrong group count": (mutated(("overlaps", "r"), [[[[0.1]]]] * 3), "overlaps.r[0] has 1 entries"),
    "overlaps wrong alpha count": (mutated(("overlaps", "q"), [[[[0.1]], [[0.2]]]] * 2), "overlaps.q has 2 entries"),
    "overlaps matrix too wide": (mutated(("overlaps", "r"), [[[[0.1, 0.2]], [[0.0, 0.0]]]] * 3),
                                 "overlaps.r[0][0][0] has 2 entries, expected 1"),
    "R1 wrong shape": (mutated(("R1",), [[0.2]] * 3), "R1[0][0] must be a list"),
    "Q1 with text": (mutated(("Q1",), [[["x"]]] * 3), "Q1[0][0][0] must be a number"),
    "missing initial": (mutated(("initial",), DELETE), "give the initial state once"),
    "initial empty list": (mutated(("initial",), []), "'initial' is an empty list"),
    "initial not an object": (mutated(("initial",), "state.json"), "must hold a JSON object"),
    "initial missing q": (mutated(("initial", "q"), DELETE), "missing key 'q'"),
    "initial unknown key": (mutated(("initial", "extra"), 1), "unknown key(s) extra"),
    "initial ascending eigenvalues": (mutated(("initial", "eigenvalues"), [1, 2]), "descending"),
    "initial weights not summing to one": (mutated(("initial", "weights"), ["1/3", "1/3"]), "sum"),
    "initial asymmetric t": (mutated(("initial",), {**INIT, "eigenvalues": [1], "weights": [1], "r": [[[0.1, 0]]],
                                                   "q": [[[0.1]]], "t": [[[1, 0.5], [0.2, 1]]]}), "symmetric"),
    "initial states disagree": (mutated(("initial",), [INIT, {**INIT, "eigenvalues": [3, 1]}]), "another spectrum"),
    "metadata not an object": (mutated(("metadata",), "linear"), "'metadata' must be an object"),
    "metadata and config": (mutated(("config",), {"activation": "linear"}), "'metadata' or 'config', not both"),
    "metadata unknown key": (mutated(("metadata", "learning_rate"), 0.5), "unknown metadata key(s) learning_rate"),
    "activation missing": (mutated(("metadata", "activation"), DELETE), "activation is not given"),
    "activation unknown": (mutated(("metadata", "activation"), "swish"), "unknown activation 'swish'"),
    "eta missing": (mutated(("metadata", "eta"), DELETE), "learning rate is not given"),
    "eta negative": (mutated(("metadata", "eta"), -0.5), "must be positive"),
    "eta expression": (mutated(("metadata", "eta"), "1/2+x"), "must be a number"),
    "N fractional": (mutated(("metadata", "N"), 100.5), "N must be a whole number"),
    "N boolean": (mutated(("metadata", "N"), True), "N must be a whole number"),
    "N one": (mutated(("metadata", "N"), 1), "N must be a whole number >= 2"),
    "seeds zero": (mutated(("metadata", "seeds"), 0), "seeds must be a count"),
    "output weights unknown": (mutated(("metadata", "output_weights"), "half"), "unknown output weights"),
    "K contradicts initial": (mutated(("metadata", "K"), 2), "K = 2 in the metadata"),
    "eps_g_seeds ragged": (mutated(("eps_g_seeds",), [[0.3, 0.3], [0.2], [0.1, 0.1]]), "eps_g_seeds[1] has 1 entries"),
    "binary garbage": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8 text"),
    "only white space": ("  \n\t\n", "only white space"),
    "deeply nested": ("[" * 100000 + "]" * 100000, "nested too deeply"),
}

CSV_CASES = {
    "CSV without init": (CSV, [], "needs its initial state: --init FILE"),
    "CSV header only": ("alpha,eps_g\n", ["INIT"], "header but no data"),
    "CSV comments only": ("# nothing here\n# at all\n", ["INIT"], "no header line"),
    "CSV unknown column": ("alpha,eps_g,loss\n0,1,2\n", ["INIT"], "unknown column 'loss'"),
    "CSV expression column": ("alpha,__import__('os')\n0,1\n", ["INIT"], "unknown column"),
    "CSV no alpha column": ("time,eps_g\n0,0.3\n", ["INIT"], "unknown column 'time'"),
    "CSV only alpha": ("alpha\n0\n1\n", ["INIT"], "nothing to check"),
    "CSV duplicate column": ("alpha,eps_g,eps_g\n0,1,1\n", ["INIT"], "duplicate column(s) eps_g"),
    "CSV ragged row": ("alpha,eps_g\n0,0.3\n1\n", ["INIT"], "data line 3 has 1 cells, the header 2"),
    "CSV text cell": ("alpha,eps_g\n0,0.3\n1,abc\n", ["INIT"], "column eps_g, data line 3 must be a number"),
    "CSV nan cell": ("alpha,eps_g\n0,nan\n", ["INIT"], "must be a number"),
    "CSV inf cell": ("alpha,eps_g\n0,1e999\n", ["INIT"], "is not finite"),
    "CSV empty cell": ("alpha,eps_g\n0,\n", ["INIT"], "must be a number"),
    "CSV non-monotone alpha": ("alpha,eps_g\n1,0.3\n0,0.2\n", ["INIT"], "strictly increasing"),
    "CSV overlap column out of range": ("alpha,r3_1_1\n0,0.1\n", ["INIT"], "outside the initial state's L = 2"),
    "CSV R1 column out of range": ("alpha,R1_2_1\n0,0.1\n", ["INIT"], "outside the 1 x 1 overlaps"),
    "CSV negative stderr": ("alpha,eps_g,eps_g_stderr\n0,0.3,-1\n", ["INIT"], "eps_g_stderr must be >= 0"),
    "CSV stderr without eps_g": ("alpha,eps_g_stderr,r1_1_1\n0,0.1,0.1\n", ["INIT"], "eps_g_stderr without eps_g"),
    "CSV unclosed quote": ('alpha,eps_g\n0,"0.3\n', ["INIT"], "malformed CSV"),
    "CSV no activation": ("alpha,eps_g\n0,0.3\n", ["INIT", "--eta", "0.5"], "activation is not given"),
    "CSV no eta": ("alpha,eps_g\n0,0.3\n", ["INIT", "--activation", "linear"], "learning rate is not given"),
}

OPTION_CASES = {
    "option contradicts file": (["--eta", "0.25"], "contradicts the file's eta"),
    "init twice": (["INIT"], "give the initial state once"),
    "threshold negative": (["--threshold", "-1"], "--threshold must be a positive number"),
    "rtol nan": (["--rtol", "nan"], "--rtol must be a positive number"),
    "missing file": (["MISSING"], "cannot read"),
}


def _check(capsys, tmp_path, content, extra):
    path = tmp_path / "trajectory"
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    init = tmp_path / "init.json"
    init.write_text(json.dumps(INIT))
    argv = ["check", str(path)]
    for arg in extra:
        argv += ["--init", str(init)] if arg == "INIT" else [str(tmp_path / "nope.json")] if arg == "MISSING" else [arg]
    if "MISSING" in extra:
        argv.remove(str(path))
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("name", sorted(JSON_CASES))
def test_malformed_json(capsys, tmp_path, name):
    content, message = JSON_CASES[name]
    code, err = _check(capsys, tmp_path, content, [])
    assert code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_malformed_csv(capsys, tmp_path, name):
    content, extra, message = CSV_CASES[name]
    code, err = _check(capsys, tmp_path, content, extra)
    assert code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("name", sorted(OPTION_CASES))
def test_bad_options(capsys, tmp_path, name):
    extra, message = OPTION_CASES[name]
    code, err = _check(capsys, tmp_path, json.dumps(GOOD), extra)
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_empty_and_huge_files(capsys, tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("")
    assert main(["check", str(path)]) == 2 and "is empty" in capsys.readouterr().err
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:
        fh.truncate(65 * 1024 * 1024)  # sparse: no disk used
    assert os.path.getsize(huge) > 64 * 1024 * 1024
    assert main(["check", str(huge)]) == 2 and "larger than 64 MiB" in capsys.readouterr().err


def test_the_good_file_is_read_and_judged(capsys, tmp_path):
    """The base of every malformed case is itself well formed (each case breaks exactly one thing):
    check reads it and compares it.  Its made-up curve (0.3, 0.2, 0.1) is not the dynamics, so the
    verdict must be 'not consistent' (exit 1), never 'malformed' (2) nor 'consistent' (0)."""
    code, err = _check(capsys, tmp_path, json.dumps(GOOD), [])
    assert code == 1, err
    code, err = _check(capsys, tmp_path, CSV, ["INIT", "--activation", "linear", "--eta", "0.5"])
    assert code == 1, err


def test_no_traceback_from_the_command_line(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "bad.json"
    path.write_text(JSON_CASES["alpha decreasing"][0])
    proc = subprocess.run([sys.executable, "-m", "exactdyn", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.startswith("exactdyn: error:")


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero", "directory"])
def test_non_regular_files_are_refused_without_blocking(capsys, tmp_path, kind):
    """check, plot and solve --init read only regular files: a FIFO with no writer, a device or a
    directory is refused at once."""
    path = tmp_path / "special"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    for argv in (["check", str(path)], ["plot", str(path), "--out", str(tmp_path / "fig.png")],
                 ["solve", "--init", str(path), "--eta", "0.5", "--alpha", "1"]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and "is not a regular file" in err and err.count("\n") == 1, (argv, err)
