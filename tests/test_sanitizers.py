"""The sanitizer harness (tests/sanitizers.py) reports what it is for: a heap overflow (ASan) and
undefined behaviour (UBSan) in a library loaded through ctypes fail the run."""

from __future__ import annotations

import pytest

from tests.sanitizers import REPORTS, assert_clean, build, require_toolchain, run

CANARY = r"""
#include <limits.h>
#include <string.h>
int canary_fill(char *p, int n) { memset(p, 1, (size_t)n); return 0; }
int canary_next(int x) { return x + 1; }
"""
CALL = """
import ctypes, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1])
buf = np.empty(64, np.uint8)
print({call})
"""


@pytest.mark.parametrize("call, report", [
    ("lib.canary_fill(ctypes.c_void_p(buf.ctypes.data), 64)", None),
    ("lib.canary_fill(ctypes.c_void_p(buf.ctypes.data), 65)", "heap-buffer-overflow"),
    ("lib.canary_next(41)", None),
    ("lib.canary_next(2**31 - 1)", "signed integer overflow"),
])
def test_the_harness_reports_what_it_is_for(tmp_path, call, report):
    require_toolchain()
    (tmp_path / "canary.c").write_text(CANARY)
    r = run(CALL.format(call=call), str(build(tmp_path / "canary.c", tmp_path)))
    if report is None:
        assert_clean(r)
    else:
        assert r.returncode != 0 and report in r.stderr and any(m in r.stderr for m in REPORTS), r.stderr[-3000:]
