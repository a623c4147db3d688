"""The derivation cache: entries are data read by an allowlist decoder, checked against their full
key, keyed by every derivation module and the sympy version, read only from small regular files."""
import dataclasses
import hashlib
import os
import pickle
import shutil
import threading

import pytest
import sympy as sp

from exactdyn.symbolic import cache, serialize
from exactdyn.symbolic.hierarchy import Structure, derive_mode, derive_moment

SMALL = Structure.named("linear", 1, 1, 2)


@pytest.fixture
def builds(tmp_path, monkeypatch):
    """A private cache; the returned list records each structure the cache had to derive."""
    monkeypatch.setenv("EXACTDYN_CACHE", str(tmp_path))
    calls = []
    for basis, builder in (("moment", derive_moment), ("mode", derive_mode)):
        def counted(structure, builder=builder):
            calls.append(structure)
            return builder(structure)
        monkeypatch.setitem(cache.BUILDERS, basis, counted)
    return calls


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _entry(key, payload):
    return serialize.dumps({"key": key, "sha256": hashlib.sha256(payload).hexdigest()}) + b"\n" + payload


def _planted(kind, marker, key):
    payload = pickle.dumps(_Payload(marker))
    if kind == "pickle":
        return payload
    if kind == "old-format pickle":
        return b"exactdyn-cache-1\n" + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    data = serialize.encode(derive_moment(SMALL))
    data["nodes"].append(["eval", f"open({str(marker)!r}, 'w')"])
    return _entry(key, serialize.dumps(data))


@pytest.mark.parametrize("kind", ["pickle", "old-format pickle", "json naming a callable"])
def test_planted_entry_does_not_run_and_is_rebuilt(builds, tmp_path, kind):
    marker = tmp_path / "marker"
    path, key = cache.entry_path(SMALL, "moment"), cache.entry_key(SMALL, "moment")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_planted(kind, marker, key))
    assert cache.derive(SMALL) == derive_moment(SMALL)
    assert not marker.exists() and len(builds) == 1
    assert cache._read(path, key) == derive_moment(SMALL)


def test_warm_entry_is_served_without_deriving(builds):
    first = cache.derive(SMALL, "mode")
    assert cache.derive(SMALL, "mode") == first and len(builds) == 1


@pytest.mark.parametrize("other,other_basis", [(Structure.named("linear", 1, 1, 3), "moment"), (SMALL, "mode")])
def test_entry_of_another_configuration_is_not_served(builds, other, other_basis):
    cache.derive(other, other_basis)
    shutil.copyfile(cache.entry_path(other, other_basis), cache.entry_path(SMALL, "moment"))
    assert cache.derive(SMALL) == derive_moment(SMALL) and len(builds) == 2
    assert cache.derive(SMALL) == derive_moment(SMALL) and len(builds) == 2  # overwritten


def _derive_within(seconds):
    result = []
    worker = threading.Thread(target=lambda: result.append(cache.derive(SMALL)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "derive blocked on the cache entry"
    return result[0]


@pytest.mark.parametrize("kind", ["symlink to /dev/zero", "fifo", "directory"])
def test_special_files_are_refused_without_blocking(builds, kind):
    path = cache.entry_path(SMALL, "moment")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        os.symlink("/dev/zero", path)
    assert cache._read_regular(path) is None
    assert _derive_within(60) == derive_moment(SMALL) and len(builds) == 1


def test_symlink_to_a_valid_entry_is_refused(builds):
    cache.derive(SMALL)
    path = cache.entry_path(SMALL, "moment")
    path.rename(path.with_suffix(".real"))
    os.symlink(path.with_suffix(".real"), path)
    assert cache._read_regular(path) is None
    assert cache.derive(SMALL) == derive_moment(SMALL) and len(builds) == 2 and not path.is_symlink()


def test_oversized_entry_is_refused(builds, monkeypatch):
    cache.derive(SMALL)
    monkeypatch.setattr(cache, "MAX_BYTES", cache.entry_path(SMALL, "moment").stat().st_size - 1)
    assert cache.derive(SMALL) == derive_moment(SMALL) and len(builds) == 2


def test_stale_entry_is_rebuilt_when_a_key_input_changes(builds, monkeypatch):
    cache.derive(SMALL)
    cache.derive(SMALL)
    assert len(builds) == 1
    monkeypatch.setattr(cache, "source_hash", lambda: "0" * 64)
    assert cache.derive(SMALL) == derive_moment(SMALL) and len(builds) == 2
    monkeypatch.setattr(sp, "__version__", "0.0.0")
    assert cache.derive(SMALL) == derive_moment(SMALL) and len(builds) == 3
    monkeypatch.setattr(serialize, "FORMAT", serialize.FORMAT + 1)
    assert cache.derive(SMALL) == derive_moment(SMALL) and len(builds) == 4
    cache.derive(SMALL)
    assert len(builds) == 4


def test_key_covers_every_derivation_module_and_not_the_package_init():
    names = {p.relative_to(cache._PACKAGE).as_posix() for p in cache.derivation_modules()}
    symbolic = {f"symbolic/{p.name}" for p in (cache._PACKAGE / "symbolic").glob("*.py")}
    assert symbolic | {"numbers.py", "errors.py"} <= names and "__init__.py" not in names


def test_source_hash_follows_file_content(tmp_path, monkeypatch):
    package = tmp_path / "exactdyn"
    shutil.copytree(cache._PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_PACKAGE", package)
    before = cache.source_hash.__wrapped__()
    (package / "README-not-imported.py").write_text("x = 1\n")
    (package / "__init__.py").write_text("# edited\n")
    assert cache.source_hash.__wrapped__() == before
    with open(package / "errors.py", "a") as fh:
        fh.write("# edited\n")
    assert cache.source_hash.__wrapped__() != before


def _nodes(chain):
    return {"assumptions": [{"real": True, "commutative": True}], "nodes": chain, "system": {}}


@pytest.mark.parametrize("nodes", [
    [["sym", "x", 0]] + [["exp", i] for i in range(serialize.MAX_DEPTH)],   # too deep
    [["int", "9" * (serialize.MAX_DIGITS + 1)]],
    [["rat", "1", "0"]],
    [["Add", 0, 0]],                                       # refers to itself
    [["sym", "x", 0], ["Pow", 0]],                          # wrong arity
    [["sym", "x", 1]],                                      # no such assumption set
    [["Function", "os.system"]],
    [["const", "__import__"]],
    [["sym", "x", 0], ["Add", 0, True]],
])
def test_decoder_refuses_malformed_nodes(nodes):
    with pytest.raises(serialize.Refused):
        serialize.decode(_nodes(nodes))


def test_decoder_refuses_unknown_assumptions_floats_and_deep_json(builds):
    with pytest.raises(serialize.Refused):
        serialize.decode({"assumptions": [{"__class__": True}], "nodes": [], "system": {}})
    with pytest.raises(serialize.Refused):
        serialize.loads(b'{"a": 1.5}')
    with pytest.raises(serialize.Refused):
        serialize.loads(b"[" + b"1" * (serialize.MAX_DIGITS + 1) + b"]")
    path, key = cache.entry_path(SMALL, "moment"), cache.entry_key(SMALL, "moment")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_entry(key, b"[" * 200_000 + b"]" * 200_000))
    assert cache._read(path, key) is None
    assert cache.derive(SMALL) == derive_moment(SMALL) and len(builds) == 1


def test_a_system_the_format_cannot_hold_is_returned_uncached(tmp_path, monkeypatch):
    monkeypatch.setenv("EXACTDYN_CACHE", str(tmp_path))
    floaty = dataclasses.replace(derive_moment(SMALL), eps_g=sp.Float(0.5))
    with pytest.raises(serialize.Unsupported):
        serialize.encode(dataclasses.replace(floaty, eps_g=sp.Dummy("d")))
    monkeypatch.setitem(cache.BUILDERS, "moment", lambda structure: floaty)
    assert cache.derive(SMALL) is floaty and not list(tmp_path.iterdir())


def test_round_trip_of_every_node_type_and_assumption():
    x = sp.Symbol("x", real=True)
    variants = [sp.Symbol("x"), x, sp.Symbol("x", positive=True), sp.Symbol("x", integer=True, positive=True),
                sp.Symbol("x", real=True, nonzero=True), sp.Symbol("n", integer=True)]
    big = sp.Integer(10) ** (serialize.MAX_DIGITS - 1) + 7
    exprs = [*variants, sp.pi, sp.E, sp.Rational(-3, 7), big, -big, sp.sqrt(x), sp.erf(x / sp.sqrt(2)),
             sp.exp(-x ** 2 / 2), sp.asin(x / (1 + x)), sp.acos(x), sp.atan(x), sp.log(1 + x ** 2), sp.Abs(x),
             sp.Add(x, x, evaluate=False), sp.Mul(2, sp.Pow(x, 1, evaluate=False), evaluate=False),
             sp.erf(0, evaluate=False), sp.Pow(4, sp.Rational(1, 2), evaluate=False)]
    enc = serialize._Encoder()
    refs = [enc.ref(e) for e in exprs]
    built = serialize._build_nodes(serialize.loads(serialize.dumps(enc.nodes)),
                                   [serialize._assumption_kwargs(a) for a in enc.assumption_sets])
    for e, r in zip(exprs, refs):
        assert built[r] == e and type(built[r]) is type(e), e
    assert len({built[r] for r in refs[:len(variants)]}) == len(variants)


def _assert_round_trip(system):
    back = serialize.decode(serialize.loads(serialize.dumps(serialize.encode(system))))
    for name in serialize.FIELDS:
        assert getattr(back, name) == getattr(system, name), name
    assert back == system


def test_round_trip_of_a_derived_system():
    _assert_round_trip(derive_mode(Structure.named("erf", 2, 1, 2)))


@pytest.mark.slow
@pytest.mark.parametrize("K,M", [(K, M) for K in (1, 2, 3) for M in (1, 2, 3)])
@pytest.mark.parametrize("activation", ["erf", "linear", "quadratic", "cubic"])
def test_round_trip_of_every_small_system(activation, K, M):
    for L in (1, 2, 3, 4):
        structure = Structure.named(activation, K, M, L)
        _assert_round_trip(derive_moment(structure))
        _assert_round_trip(derive_mode(structure))
