"""The compiled float32 printer (service/output/floattext.py, _f32text.c) prints exactly what
orjson prints, and the JSON encoder built on it gives the same bytes as a single orjson call.

Every class of float32 is printed above the compiled threshold (floattext.MIN_VALUES): both signs,
every binary exponent (subnormals included), every decimal exponent with every digit count it
has, zeros, NaN, infinities, the extremes, and arrays of texts of one length only (the longest
included) in every bracket layout. A buffer too small is an error, never a write past its end.
test_f32text_sanitized.py runs the same vectors (``vectors()``, ``check_capacity_errors``)
through a build with -fsanitize=address,undefined.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.helpers import plan_of
from service.output import floattext
from service.output import formats
from service.output.jsonenc import _OPTS
from tests.helpers import with_values

C = floattext.BACKEND == "c"
needs_c = pytest.mark.skipif(not C, reason="the C printer is not built (no C compiler at install)")


def orjson_text(a):
    return orjson.dumps(a, option=orjson.OPT_SERIALIZE_NUMPY)


def printed(a, parts=None):
    return b"".join(bytes(p) for p in floattext.dumps(a, parts=parts))


def assert_same_text(a, got, name=""):
    """got == orjson's text of a, else name the first value that differs."""
    want = orjson_text(a)
    if got != want:
        w, g = (x.decode().replace("[", "").replace("]", "").split(",") for x in (want, got))
        i = next((i for i, (x, y) in enumerate(zip(w, g)) if x != y), min(len(w), len(g)))
        raise AssertionError(f"{name}: value {i} ({a.reshape(-1)[i] if i < a.size else 'past the end'!r}): "
                             f"orjson {w[i:i + 1]}, printed {g[i:i + 1]} ({len(want)} / {len(got)} bytes)")


def test_ci_builds_the_printer():
    if os.environ.get("CI"):
        assert C, "the C float printer was not built"


def _edges() -> np.ndarray:
    vals = []
    with np.errstate(over="ignore"):
        for e in range(-45, 39):
            for m in (1, 2, 3, 5, 7, 9, 1.5, 2.5, 9.999999, 1.0000001, 4.999999, 5.000001, 1.2345678):
                vals.append(np.float32(m * 10.0 ** e))
    for k in range(-149, 128):
        p = np.float32(2.0 ** k)
        vals += [p, np.nextafter(p, np.float32(0)), np.nextafter(p, np.float32(np.inf))]
    vals += [np.float32(x) for x in (3.4028235e38, 1.17549435e-38, 1.4e-45, 16777216, 16777217, 0.1, 0.3, 1e9,
                                     999999999, 1e-34, 1e-33, 123456.0, 0.000001, 0.0000001, 1e12, 1e13)]
    vals = np.array([v for v in vals if np.isfinite(v) and v != 0], dtype=np.float32)
    return np.concatenate([vals, -vals])


CASES = {
    "edges": lambda rng: np.resize(_edges(), 70_000),
    "edges 2-D": lambda rng: np.resize(_edges(), (7, 10_000)),
    "random bit patterns (any exponent)": lambda rng: _finite(rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64)
                                                              .astype(np.uint32).view(np.float32)),
    "random bit patterns (the exact range)": lambda rng: _bits(rng, 2_000_000).reshape(2000, 1000),
    "initial weights": lambda rng: (rng.standard_normal((1000, 1000)) * 0.05).astype(np.float32),
    "uniforms": lambda rng: rng.random(1_000_000).astype(np.float32),
    "integers": lambda rng: np.arange(-70_000, 70_000, dtype=np.float32),
    "short decimals": lambda rng: (np.arange(0, 100_000) / 1000).astype(np.float32),
    "zeros, NaN, infinities": lambda rng: np.array([np.inf, np.nan, 1.0, -0.0, 0.0, -np.inf] * 12_000,
                                                   np.float32).reshape(6, 12_000),
    "3-D": lambda rng: rng.standard_normal((4, 5, 6000)).astype(np.float32),
    "one row": lambda rng: rng.standard_normal((1, 70_000)).astype(np.float32),
}


def _finite(a):
    return np.where(np.isfinite(a), a, np.float32(1.5)).astype(np.float32)


def _bits(rng, n):
    e = rng.integers(127 - 113, 127 + 30, n)
    m = rng.integers(0, 2 ** 23, n)
    s = rng.integers(0, 2, n)
    return ((s << 31) | (e << 23) | m).astype(np.uint32).view(np.float32)


def _text(v) -> str:
    return orjson_text(np.array([v], np.float32))[1:-1].decode()


def _nine_digit_decade(x: int) -> bool:
    """Some float32 of [10^x, 10^(x+1)) needs 9 digits: its ulp there, 2^(e-23) for the binade
    [2^e, 2^(e+1)) holding 10^x, is below the 8-digit step 10^(x-7); so 10^x sits above
    2^e * 10^7 / 2^23 in its binade."""
    e = math.floor(x * math.log2(10))
    e -= 2.0 ** e > 10.0 ** x  # log2's rounding
    return 10.0 ** x / 2.0 ** e > 10 ** 7 / 2 ** 23


#: Every (decimal exponent X, digit count) a positive float32's shortest text has: 1..9 digits for
#: X = -45..38, but a subnormal's spacing (1.4e-45) leaves it at most X + 46 digits, and 9 digits
#: only where 9-digit decimals are needed (_nine_digit_decade).
EXPECTED_CLASSES = {(x, nd) for x in range(-45, 39) for nd in range(1, 10)
                    if nd <= x + 46 and (nd < 9 or _nine_digit_decade(x))}


@functools.cache
def length_classes() -> dict[tuple[int, int], np.float32]:
    """(X, digit count) -> a positive float32 whose shortest digits are that many, d.dd.. x 10^X.

    Searched in each decade among decimals of every length and its first 256 float32 (where the
    ulp is narrowest relative to the decade: the 9-digit values are there)."""
    found = {}
    for x in range(-45, 39):
        with np.errstate(over="ignore"):
            spread = [np.float32(float(f"{int(s[:nd])}e{x - nd + 1}")) for nd in range(1, 10)
                      for s in ("123456789", "987654321")]
            start = np.array([10.0 ** x], np.float32).view(np.uint32)
        walk = (start + np.arange(256, dtype=np.uint32)).view(np.float32)
        vals = np.concatenate([np.array(spread, np.float32), walk])
        vals = vals[np.isfinite(vals) & (vals != 0)]
        for v, t in zip(vals, orjson_text(vals)[1:-1].split(b",")):
            _, nd, e = floattext.digits_of(t.decode())
            if e == x:
                found.setdefault((x, nd), v)
    return found


@functools.cache
def by_text_length() -> dict[int, np.ndarray]:
    """Text length -> every class of that length: both signs of every (X, digit count), zeros,
    NaN and the infinities."""
    vals = list(length_classes().values())
    vals = np.array(vals + [-v for v in vals] + [0.0, -0.0, np.nan, np.inf, -np.inf], np.float32)
    lengths = np.array([len(_text(v)) for v in vals])
    return {int(n): vals[lengths == n] for n in np.unique(lengths)}


#: Bracket layouts of MIN_VALUES + 1 values: flat, one value per list (the most brackets), deep.
LAYOUTS = {"1-D": (floattext.MIN_VALUES + 1,), "column": (floattext.MIN_VALUES + 1, 1),
           "3-D": (3, 7, 3121), "64-D": (1,) * 62 + (2, 32769)}


def vectors():
    """(name, array): every case the printer must print exactly as orjson does, all above MIN_VALUES."""
    for case in sorted(CASES):
        yield case, CASES[case](np.random.default_rng(abs(hash(case)) % 2 ** 32))
    classes = np.concatenate(list(by_text_length().values()))
    yield "every class", np.resize(classes, floattext.MIN_VALUES + 1)
    for length, vals in by_text_length().items():
        for layout, shape in LAYOUTS.items():
            if length == max(by_text_length()) or layout == "1-D":
                yield f"texts of {length} bytes only, {layout}", np.resize(vals, shape)
    # values the C code has no digits for (orjson's, then pass 2), longest texts, every layout
    far = np.array([v for (x, _), v in length_classes().items() if not -34 <= x < 9], np.float32)
    for layout, shape in LAYOUTS.items():
        yield f"two passes, {layout}", np.resize(np.concatenate([-far, far]), shape)


@needs_c
@pytest.mark.parametrize("case", sorted(CASES))
def test_prints_exactly_what_orjson_prints(case):
    a = CASES[case](np.random.default_rng(abs(hash(case)) % 2 ** 32))
    assert a.size >= floattext.MIN_VALUES and floattext.applies(a)  # the compiled path runs
    assert_same_text(a, printed(a), case)


def test_every_class_is_found():
    assert set(length_classes()) == EXPECTED_CLASSES
    assert len(EXPECTED_CLASSES) == 700  # 84 decades x 8 digit counts, less the subnormals', plus 56 of 9 digits


@needs_c
def test_every_vector_prints_exactly_what_orjson_prints():
    # the issue 12 crash: texts of 16 bytes and a comma in a buffer of 16 bytes per value
    names = []
    for name, a in vectors():
        assert a.size > floattext.MIN_VALUES and floattext.applies(a), name
        assert_same_text(a, printed(a), name)
        names.append(name)
    assert f"texts of {max(by_text_length())} bytes only, column" in names


@needs_c
def test_the_capacity_is_the_longest_text_exactly():
    # orjson's longest float32 text is 16 bytes ("-0.0000010000001": checked over all 2^31 positive
    # bit patterns when issue 12 was fixed, a negative one is a byte longer); the C layout's longest
    # is one more, 9 digits from 1e-6 on, which no float32 needs but pass 2's digits may say. The capacity is that per value, and
    # the brackets and commas exactly: a text of longest values only is n bytes short of it.
    assert max(by_text_length()) == 16 and floattext.PRINTER.max_value_text == 17
    for length, vals in by_text_length().items():
        for layout, shape in LAYOUTS.items():
            a = np.resize(vals, shape)
            assert floattext.PRINTER.capacity(a) - len(orjson_text(a)) == a.size * (17 - length), (length, layout)
    a = np.full((5, 1), -1.5e-6, np.float32)
    digits, ndig, exp10, kind = floattext.PRINTER.digits(a)
    digits[:], ndig[:] = 123456789, 9  # -1.23456789e-6: the longest layout
    out = _print(floattext.PRINTER, a, floattext.PRINTER.capacity(a), (digits, ndig, exp10, kind))
    assert out == b"[" + b",".join([b"[-0.00000123456789]"] * 5) + b"]"
    assert len(out) == floattext.PRINTER.capacity(a)


def _print(printer, a, capacity, arrays=None, slack=16):
    """weightinit_f32_json (or, given pass 1's arrays, weightinit_f32_format) into a buffer of
    capacity + slack bytes filled with 0xAB: the result, or the bytes written; asserts nothing was
    written past the capacity."""
    shape = np.array(a.shape, np.int64)
    buf = np.full(capacity + slack, 0xAB, np.uint8)
    args = (a.ctypes.data, a.size, shape.ctypes.data, a.ndim)
    if arrays is None:
        r = printer.lib.weightinit_f32_json(*args, buf.ctypes.data, capacity)
    else:
        r = printer.lib.weightinit_f32_format(*args, *(x.ctypes.data for x in arrays), buf.ctypes.data, capacity)
    assert (buf[max(capacity, 0):] == 0xAB).all(), f"written past the capacity {capacity}"
    return r if r < 0 else buf[:r].tobytes()


def check_capacity_errors(printer):
    """Every capacity from 0 to what the text needs: the text, or FULL and nothing written past it;
    arguments the C code cannot print: BAD_ARGUMENTS. Both passes."""
    longest = by_text_length()[max(by_text_length())]
    near = longest[np.abs(longest) < 1e9]  # digits the C code finds itself: one pass
    far = np.float32([-1.2345679e12, 3.4028235e38, -1e-45, 1.5e-40])  # orjson's digits: two passes
    for a in (np.resize(near, 9), np.resize(near, (4, 1)), np.resize(near, (2, 1, 3)), np.resize(longest, (3, 3)),
              far.reshape(2, 2)):
        want, need = orjson_text(a), printer.capacity(a)
        arrays, one_pass = printer.digits(a), bool(np.all(np.abs(a) < 1e9))
        for capacity in range(need + 2):
            got = _print(printer, a, capacity, arrays)
            assert got == floattext.FULL or got == want, (a.shape, capacity)
            got = _print(printer, a, capacity)
            assert got in (floattext.FULL, want if one_pass else floattext.NEEDS_ORJSON), (a.shape, capacity)
        assert _print(printer, a, need, arrays, slack=0) == want
        assert _print(printer, a, need, slack=0) == (want if one_pass else floattext.NEEDS_ORJSON)
    a = np.ones((2, 3), np.float32)
    bad = {"shape product != n": dict(shape=(3, 3)), "zero dimension": dict(shape=(0, 6), n=0),
           "no dimension": dict(shape=()), "65 dimensions": dict(shape=(1,) * 63 + (2, 3)),
           "negative capacity": dict(capacity=-1), "negative n": dict(n=-6, shape=(-6,))}
    for name, change in bad.items():
        shape = np.array(change.get("shape", a.shape), np.int64).reshape(-1)
        buf = np.full(200, 0xAB, np.uint8)
        r = printer.lib.weightinit_f32_json(a.ctypes.data, change.get("n", 6), shape.ctypes.data, shape.size,
                                            buf.ctypes.data, change.get("capacity", 150))
        assert r == floattext.BAD_ARGUMENTS and (buf == 0xAB).all(), name
        assert printer.lib.weightinit_f32_capacity(change.get("n", 6), shape.ctypes.data, shape.size) < 0 \
            or name == "negative capacity", name
    # pass 2's digits outside what the layout is sized for: (digits, count, exponent, kind)
    for d, nd, x, kind in [(1, 0, 0, 0), (1234567891, 10, 0, 0), (12, 1, 0, 0), (1, 2, 0, 0), (1, 1, -46, 0),
                           (1, 1, 39, 0), (1, 1, 0, 3), (1, 1, 0, 4), (1, 1, 0, 255)]:
        arrays = printer.digits(a)
        for arr, v in zip(arrays, (d, nd, x, kind)):
            arr[4] = v
        assert _print(printer, a, printer.capacity(a), arrays) == floattext.BAD_ARGUMENTS, (d, nd, x, kind)
    assert printer.lib.weightinit_f32_digits(a.ctypes.data, -1, *(x.ctypes.data for x in printer.digits(a))) \
        == floattext.BAD_ARGUMENTS


@needs_c
def test_a_full_buffer_is_an_error_not_an_overflow():
    check_capacity_errors(floattext.PRINTER)


@needs_c
def test_what_the_printer_refuses_it_says_so():
    with pytest.raises(ValueError, match="C-contiguous float32"):
        floattext.PRINTER.text(np.ones((300, 300), np.float32).T)
    with pytest.raises(ValueError, match="C-contiguous float32"):
        floattext.PRINTER.text(np.ones(10, np.float64))
    with pytest.raises(ValueError, match="its shape"):
        floattext.PRINTER.text(np.ones((3, 0), np.float32))


def test_the_tables_are_the_powers_they_say():
    # _f32text.c's tables are constants (no initialisation at run time, so none to race or to
    # forget): POW5[k] = 5^k (POW5_64 the same, its first entries), PAIRS the two-digit numbers.
    c = (Path(floattext.__file__).parent / "_f32text.c").read_text()
    p27 = int(re.search(r"#define P27 \(\(u128\)(\d+)ull\)", c).group(1))

    def table(name):
        body = re.search(rf"static const \w+ {name}\[[^]]+\] = \{{(.*?)\}};", c, re.S).group(1)
        body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
        return [math.prod(p27 if f.strip() == "P27" else int(f.strip().removesuffix("ull")) for f in e.split("*"))
                for e in body.split(",") if e.strip()]

    kmax = int(re.search(r"#define KMAX (\d+)", c).group(1))
    assert table("POW5") == [5 ** k for k in range(kmax + 1)]
    assert table("POW5_64") == [5 ** k for k in range(15)]  # the 64-bit path's k <= 14
    assert table("POW10U") == [10 ** k for k in range(11)]
    pairs = "".join(re.findall(r'"(\d+)"', re.search(r"PAIRS\[201\] = [^\n]*\n(.*?);", c, re.S).group(1)))
    assert pairs == "".join(f"{i:02d}" for i in range(100))
    assert "init(" not in c and "static volatile" not in c


ISSUE_12 = {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [65536]}]},
            "scheme": {"name": "constant", "value": -1.2345678e-6}}


def test_cli_generate_of_the_issue_12_document(tmp_path):
    # 65,536 texts of 16 bytes and a comma: SIGSEGV in a buffer of 16 bytes per value.
    (tmp_path / "doc.json").write_bytes(orjson.dumps(ISSUE_12))
    r = subprocess.run([sys.executable, "-m", "service", "generate", "doc.json", "-o", "w.json"], cwd=tmp_path,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert (tmp_path / "w.json").read_bytes() == orjson.dumps(with_values(plan_of(ISSUE_12)),
                                                              option=_OPTS)


@needs_c
@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_slices_join_to_the_same_text(parts):
    a = (np.random.default_rng(1).standard_normal((301, 300)) * 0.1).astype(np.float32)
    assert printed(a, parts=parts) == orjson_text(a)


def test_what_it_does_not_print_goes_to_orjson():
    for a in (np.zeros((0, 5), np.float32), np.float32(1.5).reshape(()), np.arange(10, dtype=np.float32),
              np.arange(100_000, dtype=np.float64), np.ones((1,) * 62 + (0, 70_000), np.float32)):
        assert printed(a) == orjson_text(a)


@pytest.mark.parametrize("text, expected", [
    ("1.0", (1, 1, 0)), ("-0.000015", (15, 2, -5)), ("1200000000.0", (12, 2, 9)), ("1e-7", (1, 1, -7)),
    ("1.5e+13", (15, 2, 13)), ("0.33333334", (33333334, 8, -1)), ("123.456", (123456, 6, 2)),
])
def test_digits_of_orjson_text(text, expected):
    assert floattext.digits_of(text) == expected


DOCS = [
    {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [1000, 1000]}]}, "scheme": "he_normal",
     "seed": 1},
    {"architecture": {"layers": [{"type": "dense", "name": "a", "in_features": 300, "out_features": 700},
                                 {"type": "dense", "name": "b", "in_features": 700, "out_features": 900}]},
     "scheme": "xavier_uniform", "seed": 3},
    {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [300_000]}]}, "scheme": "he_normal",
     "seed": 4},
    {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [3, 100, 400]}]},
     "scheme": {"name": "constant", "value": 0.25}, "seed": 5},
    {"architecture": {"layers": [{"type": "tensor", "name": "w", "shape": [500, 300]}]}, "scheme": "he_normal",
     "seed": 6, "dtype": "bfloat16"},
    ISSUE_12,
]


@pytest.mark.parametrize("i", range(len(DOCS)))
def test_json_artifact_equals_one_orjson_call(i):
    artifact = formats.artifact(plan_of(DOCS[i]), "json")
    body = b"".join(bytes(p) for p in artifact.chunks())
    want = orjson.dumps(with_values(plan_of(DOCS[i])), option=_OPTS)
    assert body == want
    assert artifact.length == len(want)
    assert artifact.sha256 == hashlib.sha256(want).hexdigest()
