"""Compiled kernels for the O(L^2) work of the linear eigenmode route.

Two stages.  The roots of the secular function g(u) = sum_k a_k / (lambda_k - u) - 1 are first
located in plain floating point (no claim is made about them): a safeguarded Newton iteration in
float64 on the offset mu = lambda_j - u from the pole above, then one Newton step with g evaluated
in double-double.  Then every number that is printed comes from FLINT's ball functions (arb_sub,
arb_inv, arb_mul, arb_dot, arb_exp) called by symbol from numba-compiled loops (cached on disk): at
the approximate root u_j (an exact binary point) one pass over k, in blocks of BLOCK terms with
running dot products, gives balls for

    g(u_j), T(u_j) = sum_k b_k / (lambda_k - u_j), S2(u_j) = sum_k a_k / (lambda_k - u_j)^2,
    T1(u_j) = sum_k b_k / (lambda_k - u_j)^2,    S3(u_j) = sum_k a_k / (lambda_k - u_j)^3,

and the distances to the two neighbouring poles; `linear._kernel_mode_route` turns them into
certified root and coefficient balls with O(1) ball operations per root.  Ball arithmetic is the
final word: a wrong float stage can only make the certification fail (PrecisionError), never make
a printed digit wrong.

The balls cross between python-flint and the C vectors as decimal strings written by arb_get_str
and read by arb_set_str, which FLINT guarantees to give a ball containing the original.  A C
vector of n balls is n * 48 zeroed bytes (sizeof(arb_struct) on 64-bit platforms; zeroed memory is
an initialised zero ball), checked once when the library is loaded.
"""
import ctypes
import ctypes.util
import glob
import os

import flint
import llvmlite.binding as llvm
import numba
import numpy as np
from numba import njit, prange
from numba.core import types

from ..errors import ExactdynError

ARB = 48  # bytes per arb_struct: arf (exponent, size, two limbs) + mag (exponent, limb)
_P, _S = ctypes.c_size_t, ctypes.c_long


def _load():
    """libflint as python-flint loaded it (same file, hence the same allocator), or None."""
    here = os.path.dirname(flint.__file__)
    paths = sorted(glob.glob(os.path.join(here, os.pardir, "python_flint.libs", "libflint*")))
    found = ctypes.util.find_library("flint")
    for path in paths + ([found] if found else []):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


_lib = _load()


def _fn(name, args, res=None):
    f = getattr(_lib, name)
    f.argtypes, f.restype = args, res
    return f


if _lib is not None:
    arb_set_str = _fn("arb_set_str", [_P, ctypes.c_char_p, _S], ctypes.c_int)
    arb_get_str = _fn("arb_get_str", [_P, _S, ctypes.c_ulong], ctypes.c_void_p)
    flint_free = _fn("flint_free", [ctypes.c_void_p])
    arb_clear = _fn("arb_clear", [_P])
    arb_set_si = _fn("arb_set_si", [_P, _S])
    arb_dot_py = _fn("arb_dot", [_P, _P, ctypes.c_int, _P, _S, _P, _S, _S, _S])
    # The compiled loops call FLINT by symbol name (resolved when linked), so numba can cache them.
    llvm.load_library_permanently(_lib._name)


def _extern(name, *args):
    return types.ExternalFunction(name, types.void(*args))


_p, _s = types.uintp, types.intp
arb_sub = _extern("arb_sub", _p, _p, _p, _s)
arb_sub_si = _extern("arb_sub_si", _p, _p, _s, _s)
arb_inv = _extern("arb_inv", _p, _p, _s)
arb_mul = _extern("arb_mul", _p, _p, _p, _s)
arb_exp = _extern("arb_exp", _p, _p, _s)
arb_set = _extern("arb_set", _p, _p)
arb_swap = _extern("arb_swap", _p, _p)
arb_zero = _extern("arb_zero", _p)
arb_get_mid_arb = _extern("arb_get_mid_arb", _p, _p)
arb_dot = _extern("arb_dot", _p, _p, types.intc, _p, _s, _p, _s, _s, _s)


class Vector:
    """n arb balls in C memory, filled from python-flint balls and read back via decimal strings."""

    def __init__(self, n):
        self.n = n
        self.buf = np.zeros(max(n, 1) * ARB, np.uint8)
        self.addr = self.buf.ctypes.data

    @classmethod
    def of(cls, balls, prec):
        v = cls(len(balls))
        digits = int(prec * 0.30103) + 5
        for i, x in enumerate(balls):
            text = x.str(digits, radius=True)
            if arb_set_str(v.addr + ARB * i, text.encode(), prec):
                raise ExactdynError(f"FLINT could not read the ball {text!r}")
        return v

    def balls(self, prec):
        """The balls as python-flint arbs, read at `prec` bits."""
        digits = int(prec * 0.30103) + 5
        out = []
        with flint.ctx.workprec(prec):
            for i in range(self.n):
                ptr = arb_get_str(self.addr + ARB * i, digits, 0)
                out.append(flint.arb(ctypes.string_at(ptr).decode()))
                flint_free(ptr)
        return out

    def close(self):
        for i in range(self.n):
            arb_clear(self.addr + ARB * i)
        self.n = 0


def _layout_ok():
    """arb_dot walks the vector with FLINT's own sizeof(arb_struct): 1^2 + 2^2 + 3^2 + 4^2 = 30."""
    v, res = Vector(4), Vector(1)
    for i in range(4):
        arb_set_si(v.addr + ARB * i, i + 1)
    arb_dot_py(res.addr, 0, 0, v.addr, 1, v.addr, 1, 4, 64)
    ok = res.balls(64)[0] == 30
    v.close()
    res.close()
    return ok


AVAILABLE = _lib is not None and _layout_ok()


# ---- stage 1: floating-point roots (approximations only) ----

@njit(inline="always")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(inline="always")
def _quick(a, b):
    s = a + b
    return s, b - (s - a)


@njit(inline="always")
def _two_prod(a, b):
    p = a * b
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(inline="always")
def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    return _quick(s, e + al + bl)


@njit(inline="always")
def _dd_div(ah, al, bh, bl):
    q = ah / bh
    p, pe = _two_prod(q, bh)
    r = ((ah - p) - pe + al) - q * bl
    return _quick(q, r / bh)


@njit(parallel=True, cache=True)
def approximate_roots(lam_hi, lam_lo, a_hi, a_lo, bottom, n_roots):
    """Offsets mu_j = lambda_j - u_j (double-double: hi, lo) of the first n_roots secular roots, one
    per gap (lambda_{j+1}, lambda_j) and the last in (bottom, lambda_L).  Newton on F = g mu (gap - mu), which
    has no pole in the gap, safeguarded by bisection; then one Newton step with g in double-double."""
    L = lam_hi.size
    mu_hi = np.empty(n_roots)
    mu_lo = np.empty(n_roots)
    for j in prange(n_roots):
        top = lam_hi[j]
        inner = j + 1 < L
        gap = top - (lam_hi[j + 1] if inner else bottom)
        lo, hi, mu = 0.0, gap, 0.5 * gap
        for _ in range(400):
            g, s2 = -1.0, 0.0
            for k in range(L):
                inv = 1.0 / ((lam_hi[k] - top) + mu)
                t = a_hi[k] * inv
                g += t
                s2 += t * inv
            if g > 0:  # g decreases in mu: the root lies further from the pole
                lo = mu
            else:
                hi = mu
            if inner:
                F, dF = g * mu * (gap - mu), -s2 * mu * (gap - mu) + g * (gap - 2 * mu)
            else:
                F, dF = g * mu, g - s2 * mu
            new = mu - F / dF
            if not (lo < new < hi):
                new = 0.5 * (lo + hi)
            done = abs(new - mu) <= 4e-16 * mu or not hi - lo > 4e-16 * mu
            mu = new
            if done:
                break
        gh, gl, s2 = -1.0, 0.0, 0.0
        for k in range(L):
            dh, dl = _dd_add(lam_hi[k], lam_lo[k], -top, -lam_lo[j])
            dh, dl = _dd_add(dh, dl, mu, 0.0)
            th, tl = _dd_div(a_hi[k], a_lo[k], dh, dl)
            gh, gl = _dd_add(gh, gl, th, tl)
            s2 += th / dh
        mu_hi[j], mu_lo[j] = _quick(mu, (gh + gl) / s2)
    return mu_hi, mu_lo


# ---- stage 2: ball sums from compiled loops ----

FIELDS = 8  # per root: g, T, S2, T1, S3, lambda_j - u, lambda_{j+1} - u, u


BLOCK = 512  # terms per block of the inner loop: the per-thread work vectors stay in cache


@njit(parallel=True, cache=True)
def _root_sums(lam, a, b, index, centers, out, work, L, prec, low):
    n = index.size
    for i in prange(n):
        j = index[i]
        base = work + numba.get_thread_id() * (4 * BLOCK + 1) * ARB
        d, inv, inv2, c = base, base + BLOCK * ARB, base + 2 * BLOCK * ARB, base + 3 * BLOCK * ARB
        part = base + 4 * BLOCK * ARB
        o = out + i * FIELDS * ARB
        u = o + 7 * ARB
        arb_get_mid_arb(u, centers + i * ARB)  # an exact point: the ball sums below are at exactly this u
        for f in range(5):
            arb_zero(o + f * ARB)
        for k0 in range(0, L, BLOCK):
            m = min(BLOCK, L - k0)
            for q in range(m):
                k, s = k0 + q, q * ARB
                # lambda_k and u carry `fine` bits, so the difference is good to `prec` bits of itself
                arb_sub(d + s, lam + k * ARB, u, prec)
                arb_inv(inv + s, d + s, prec)
                arb_mul(inv2 + s, inv + s, inv + s, prec)
                arb_mul(c + s, a + k * ARB, inv + s, low)
                if k == j:
                    arb_set(o + 5 * ARB, d + s)
                elif k == j + 1:
                    arb_set(o + 6 * ARB, d + s)
            # running sums: o_f <- o_f + (this block's dot product)
            ak, bk = a + k0 * ARB, b + k0 * ARB
            for f, x, y, p in ((0, ak, inv, prec), (1, bk, inv, prec), (2, ak, inv2, prec), (3, bk, inv2, low),
                               (4, c, inv2, low)):
                arb_dot(part, o + f * ARB, 0, x, 1, y, 1, m, p)
                arb_swap(o + f * ARB, part)
        arb_sub_si(o, o, 1, prec)


@njit(parallel=True, cache=True)
def _alpha_sums(rates, coefs, alphas, n_alpha, out, work, L, prec):
    for i in prange(n_alpha):
        e = work + numba.get_thread_id() * L * ARB
        x = alphas + i * ARB
        for k in range(L):
            arb_mul(e + k * ARB, rates + k * ARB, x, prec)
            arb_exp(e + k * ARB, e + k * ARB, prec)
        arb_dot(out + i * ARB, 0, 0, coefs, 1, e, 1, L, prec)


def root_sums(lam, a, b, index, centers, prec, fine, low):
    """For the roots j in `index`: [g, T, S2, T1, S3, lambda_j - u_j, lambda_{j+1} - u_j, u_j] as balls at
    `prec` bits (T1 and S3 at `low`), at the exact points u_j = midpoints of `centers` (given, like
    lambda, at `fine` bits, so that lambda_k - u_j is good to `prec` bits of itself next to a pole)."""
    L = len(lam)
    vl, va, vb, vu = Vector.of(lam, fine), Vector.of(a, prec), Vector.of(b, prec), Vector.of(centers, fine)
    out, work = Vector(FIELDS * len(index)), Vector((4 * BLOCK + 1) * numba.config.NUMBA_NUM_THREADS)
    try:
        _root_sums(vl.addr, va.addr, vb.addr, np.asarray(index, np.int64), vu.addr, out.addr, work.addr, L, prec, low)
        flat = out.balls(fine)
    finally:
        for v in (vl, va, vb, vu, out, work):
            v.close()
    return [flat[FIELDS * i:FIELDS * (i + 1)] for i in range(len(index))]


def alpha_sums(rates, coefs, alphas, prec):
    """sum_j coefs_j exp(rates_j alpha) for each alpha, as balls at `prec` bits."""
    L = len(rates)
    vr, vc, va = Vector.of(rates, prec), Vector.of(coefs, prec), Vector.of(alphas, prec)
    out, work = Vector(len(alphas)), Vector(L * numba.config.NUMBA_NUM_THREADS)
    try:
        _alpha_sums(vr.addr, vc.addr, va.addr, len(alphas), out.addr, work.addr, L, prec)
        return out.balls(prec)
    finally:
        for v in (vr, vc, va, out, work):
            v.close()


def split(balls):
    """Double-double (hi, lo) float arrays of ball midpoints (approximations for stage 1)."""
    hi = np.array([float(x.mid()) for x in balls])
    lo = np.array([float((x - h).mid()) for x, h in zip(balls, hi)])
    return hi, lo
