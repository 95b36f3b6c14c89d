"""_f32text.c built with -fsanitize=address,undefined (tests/sanitizers.py): the printer's vectors
(test_floattext.py: every class of float32, the longest texts in every layout, every capacity too
small) give orjson's bytes with no sanitizer report; and the issue 12 call, which wrote past its
buffer, is a clean FULL now, while a build without the room check is caught writing past it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.output import floattext
from tests.sanitizers import assert_clean, build, require_toolchain, run

SOURCE = Path(floattext.__file__).parent / "_f32text.c"

VECTORS = """
import sys
from service.output import floattext
from tests.output import test_floattext as t
printer = floattext.Printer(sys.argv[1])
count = 0
for name, a in t.vectors():
    t.assert_same_text(a, bytes(printer.text(a)), name)
    count += 1
t.check_capacity_errors(printer)
print(count)
"""

#: The issue 12 call: 65,536 texts of 16 bytes and a comma, in the 16 bytes per value main gave.
ISSUE_12_CALL = """
import sys
import numpy as np
from service.output import floattext
printer = floattext.Printer(sys.argv[1])
a = np.full(65536, -1.2345678e-6, np.float32)
shape = np.array(a.shape, np.int64)
capacity = a.size * 16 + 2 * a.ndim + 16
out = np.empty(capacity, np.uint8)
print(printer.lib.weightinit_f32_json(a.ctypes.data, a.size, shape.ctypes.data, a.ndim, out.ctypes.data, capacity))
"""
ROOM_CHECK = "if (end - o < MAX_VALUE_TEXT + (k > 0)) return FULL;"


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory) -> Path:
    require_toolchain()
    return build(SOURCE, tmp_path_factory.mktemp("f32text"))


def test_the_printers_vectors_under_sanitizers(sanitized):
    r = run(VECTORS, str(sanitized))
    assert_clean(r)
    assert int(r.stdout.split()[-1]) >= 30  # the vectors ran


def test_the_issue_12_call_is_a_clean_error(sanitized):
    r = run(ISSUE_12_CALL, str(sanitized))
    assert_clean(r)
    assert int(r.stdout.split()[-1]) == floattext.FULL


def test_a_write_past_the_end_is_caught(tmp_path):
    # What the sanitized build is for: without the room check, the same call writes past the buffer.
    require_toolchain()
    source = SOURCE.read_text()
    assert ROOM_CHECK in source
    (tmp_path / "_f32text.c").write_text(source.replace(ROOM_CHECK, ""))
    r = run(ISSUE_12_CALL, str(build(tmp_path / "_f32text.c", tmp_path)))
    assert r.returncode != 0 and "heap-buffer-overflow" in r.stderr, (r.returncode, r.stderr[-3000:])
