"""`exactdyn plot`: learning curves from solve/simulate JSON outputs."""
import json

import matplotlib.image
import pytest

from exactdyn.cli import main

SOLVE = {"alpha": ["1/10", "1", "10"], "eps_g": ["0.5", "0.25", "1.5e-400"], "metadata": {"activation": "linear"}}
SIM = {"alpha": [0.1, 1, 10], "eps_g": [0.5, 0.26, 0.01], "eps_g_stderr": [0.01, None, 0.001],
       "metadata": {"activation": "linear", "N": 1024}}


def _files(tmp_path, *datas):
    paths = []
    for i, data in enumerate(datas):
        path = tmp_path / f"curve{i}.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("scale", ["loglog", "semilogy", "linear"])
def test_plot_writes_a_png(capsys, tmp_path, scale):
    out = tmp_path / "fig.png"
    assert main(["plot", *_files(tmp_path, SOLVE, SIM), "--out", str(out), "--scale", scale]) == 0
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 300 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # something was drawn


@pytest.mark.parametrize("data, message", [
    ({"alpha": [1, 2]}, "no 'alpha' and 'eps_g' lists"),
    ({"alpha": [1, 2], "eps_g": [0.1]}, "eps_g has 1 entries, alpha 2"),
    ({"alpha": [2, 1], "eps_g": [0.1, 0.2]}, "strictly increasing"),
    ({"alpha": [1, 2], "eps_g": [0.1, "x"]}, "must be a number"),
    ({"alpha": [1, 2], "eps_g": [0.1, 0.2], "eps_g_stderr": [0.1]}, "as long as alpha"),
    ("[1, 2", "not valid JSON"),
    ('{"alpha": [1, NaN], "eps_g": [1, 2]}', "non-finite"),
])
def test_plot_refuses_bad_files(capsys, tmp_path, data, message):
    code = main(["plot", *_files(tmp_path, data), "--out", str(tmp_path / "fig.png")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_plot_wants_a_png_name(capsys, tmp_path):
    assert main(["plot", *_files(tmp_path, SOLVE), "--out", str(tmp_path / "fig.pdf")]) == 2
    assert "must name a .png" in capsys.readouterr().err
