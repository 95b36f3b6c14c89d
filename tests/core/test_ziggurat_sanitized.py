"""_ziggurat.c built with -fsanitize=address,undefined (tests/sanitizers.py): the twins' vectors
(test_normals.py, test_seeds.py) give the NumPy reference's values, generator state and seed words
with no sanitizer report; a build that indexes past its tables is caught."""

from __future__ import annotations

from pathlib import Path

from service.core import normals
from tests.core import test_seeds
from tests.sanitizers import assert_clean, build, require_toolchain, run

SOURCE = Path(normals.__file__).parent / "_ziggurat.c"

VECTORS = """
import sys
from service.core import normals
from tests.core import test_normals as t
native = normals.Native(sys.argv[1])
for seed, n, dtype in t.TWIN_VECTORS:
    t.assert_twins_agree(native, seed, n, dtype)
print(len(t.TWIN_VECTORS))
"""
LAYER_MASK = "uint32_t i = (uint32_t)(w & 0x1FF);"


def test_the_twins_vectors_under_sanitizers(tmp_path):
    require_toolchain()
    r = run(VECTORS, str(build(SOURCE, tmp_path)))
    assert_clean(r)
    assert int(r.stdout.split()[-1]) >= 200  # the vectors ran


def test_a_read_past_the_tables_is_caught(tmp_path):
    # What the sanitized build is for: a (layer, sign) index of 10 bits reads past the 512-entry tables.
    require_toolchain()
    source = SOURCE.read_text()
    assert LAYER_MASK in source
    (tmp_path / "_ziggurat.c").write_text(source.replace(LAYER_MASK, LAYER_MASK.replace("0x1FF", "0x3FF")))
    r = run(VECTORS, str(build(tmp_path / "_ziggurat.c", tmp_path)))
    assert r.returncode != 0 and "heap-buffer-overflow" in r.stderr, (r.returncode, r.stderr[-3000:])


SEED_VECTORS = """
import sys
from service.core import seeds
from tests.core import test_seeds as t
seeder = seeds.Seeder(sys.argv[1])
for seed, position, block in t.SEED_VECTORS:
    t.assert_twin_agrees(seeder, seed, position, block)
try:
    seeder.state(1, 2, 3, capacity=3)
except ValueError:
    print(len(t.SEED_VECTORS))
"""


def test_the_seed_twins_vectors_under_sanitizers(tmp_path):
    require_toolchain()
    r = run(SEED_VECTORS, str(build(SOURCE, tmp_path)))
    assert_clean(r)
    assert int(r.stdout.split()[-1]) == len(test_seeds.SEED_VECTORS)  # the vectors ran, the full buffer refused
