"""Reading user files safely, and the number checks every reader shares.

Only a regular file is read (a FIFO, a device or a symlink to one is refused without blocking), and
at most MAX_BYTES of it.  JSON constants NaN and Infinity are refused; nothing is evaluated.
"""
import json
import math
import os
import re
import stat

from ..errors import ExactdynError
from ..numbers import to_fraction

MAX_BYTES = 64 * 1024 * 1024
_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_RATIO = re.compile(r"^[+-]?\d+/[1-9]\d*$")


def read_bytes(path, max_bytes=MAX_BYTES):
    """The bytes of the regular file `path`, refused when larger than `max_bytes`."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ExactdynError(f"cannot read {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ExactdynError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > max_bytes:
            raise ExactdynError(f"{path} is larger than {max_bytes // (1024 * 1024)} MiB")
        try:
            blob = fh.read(max_bytes + 1)
        except OSError as exc:
            raise ExactdynError(f"cannot read {path}: {exc.strerror}") from None
    if len(blob) > max_bytes:
        raise ExactdynError(f"{path} is larger than {max_bytes // (1024 * 1024)} MiB")
    return blob


def read_text(path, max_bytes=MAX_BYTES):
    """The UTF-8 text of the regular file `path` (an empty file is refused)."""
    blob = read_bytes(path, max_bytes)
    if not blob:
        raise ExactdynError(f"{path} is empty")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        raise ExactdynError(f"{path} is not UTF-8 text") from None


def reject_constant(name):
    raise ExactdynError(f"non-finite number {name} in the file")


def parse_json(text, where, **kwargs):
    """json.loads with NaN/Infinity refused and every failure one clear ExactdynError."""
    try:
        return json.loads(text, parse_constant=reject_constant, **kwargs)
    except json.JSONDecodeError as exc:
        raise ExactdynError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise ExactdynError(f"{where} is nested too deeply") from None
    except ExactdynError:
        raise
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise ExactdynError(f"{where} holds an unreadable number: {str(exc).splitlines()[0][:80]}") from None


def finite(value, where):
    """A finite float from a JSON number or a decimal / 'p/q' string (nothing else)."""
    if isinstance(value, bool):
        raise ExactdynError(f"{where} must be a number, got a boolean")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str) and (_FLOAT.match(value.strip()) or _RATIO.match(value.strip())):
        x = float(value) if _FLOAT.match(value.strip()) else float(to_fraction(value))
    else:
        kind = "text " + repr(value)[:30] if isinstance(value, str) else type(value).__name__
        raise ExactdynError(f"{where} must be a number, got {kind}")
    if not math.isfinite(x):
        raise ExactdynError(f"{where} is not finite ({value!r})")
    return x


def increasing_alpha(values):
    """alpha values as a tuple: at least one, >= 0, strictly increasing."""
    if len(values) == 0:
        raise ExactdynError("the trajectory has no alpha values")
    if any(a < 0 for a in values):
        raise ExactdynError("alpha must be >= 0")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ExactdynError("alpha must be strictly increasing")
    return tuple(values)
