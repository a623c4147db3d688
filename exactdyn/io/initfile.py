"""The initial-overlap file: per eigenvalue group k, r^k = J P_k B / N, q^k = J P_k J / N, t^k.

    {"eigenvalues": [lambda_1, ..., lambda_L] (descending, distinct, positive),
     "weights": [fraction of dimensions per group] (optional, default 1/L each),
     "r": [L][K][M], "q": [L][K][K], "t": [L][M][M]}

Numbers may be JSON numbers (read as the exact decimal written) or strings "p/q".  The file
defines the spectrum and the widths.  Nothing in it is evaluated as code.
"""
from dataclasses import dataclass
from fractions import Fraction

from ..errors import ExactdynError
from ..numbers import to_fraction
from ..spectrum import from_eigenvalues
from .files import parse_json, read_text


@dataclass(frozen=True)
class InitialOverlaps:
    spectrum: object
    r: tuple
    q: tuple
    t: tuple

    @property
    def K(self):
        return len(self.r[0])

    @property
    def M(self):
        return len(self.r[0][0])


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, Fraction, str)):
        raise ExactdynError(f"{where} must be a number, got {type(value).__name__}")
    return to_fraction(value, where)


def _block(data, name, L, rows, cols):
    if name not in data:
        raise ExactdynError(f"missing key {name!r}")
    block = data[name]
    if not isinstance(block, list) or len(block) != L:
        raise ExactdynError(f"{name!r} must be a list of {L} matrices (one per eigenvalue group)")
    out = []
    for k, mat in enumerate(block):
        if not isinstance(mat, list) or len(mat) != rows or any(not isinstance(r, list) or len(r) != cols for r in mat):
            raise ExactdynError(f"{name}[{k}] must be a {rows}x{cols} matrix")
        out.append(tuple(tuple(_number(x, f"{name}[{k}][{i}][{j}]") for j, x in enumerate(row)) for i, row in enumerate(mat)))
    return tuple(out)


def parse_initial(data):
    if not isinstance(data, dict):
        raise ExactdynError("the initial-overlap file must hold a JSON object")
    unknown = set(data) - {"eigenvalues", "weights", "r", "q", "t"}
    if unknown:
        raise ExactdynError(f"unknown key(s) {', '.join(sorted(unknown))}")
    if "eigenvalues" not in data or not isinstance(data["eigenvalues"], list) or not data["eigenvalues"]:
        raise ExactdynError("'eigenvalues' must be a non-empty list")
    lam = [_number(x, f"eigenvalues[{i}]") for i, x in enumerate(data["eigenvalues"])]
    if any(a <= b for a, b in zip(lam, lam[1:])):
        raise ExactdynError("eigenvalues must be distinct and in descending order")
    weights = data.get("weights")
    if weights is not None:
        if not isinstance(weights, list):
            raise ExactdynError("'weights' must be a list")
        weights = [_number(x, f"weights[{i}]") for i, x in enumerate(weights)]
    spectrum = from_eigenvalues(lam, weights)
    L = len(lam)
    r = data.get("r")
    if not isinstance(r, list) or not r or not isinstance(r[0], list) or not r[0] or not isinstance(r[0][0], list):
        raise ExactdynError("'r' must be a list of K x M matrices")
    K, M = len(r[0]), len(r[0][0])
    if not K or not M:
        raise ExactdynError("'r' matrices must not be empty")
    init = InitialOverlaps(spectrum, _block(data, "r", L, K, M), _block(data, "q", L, K, K), _block(data, "t", L, M, M))
    for name, blocks in (("q", init.q), ("t", init.t)):
        for k, mat in enumerate(blocks):
            if any(mat[i][j] != mat[j][i] for i in range(len(mat)) for j in range(i)):
                raise ExactdynError(f"{name}[{k}] must be symmetric")
            if any(mat[i][i] < 0 for i in range(len(mat))):
                raise ExactdynError(f"{name}[{k}] has a negative diagonal entry")
    return init


def read_initial(path):
    """Read and validate an initial-overlap file (a clear ExactdynError for anything malformed)."""
    return parse_initial(parse_json(read_text(path), path, parse_float=lambda text: to_fraction(text, "a number")))
