"""Only the optional C sampler lives here; everything else is in pyproject.toml.

service/core/_ziggurat.c is the compiled twin of service/core/normals.py (same bytes, ~3x
faster, no GIL). ``optional=True``: without a C compiler the install still succeeds and the
engine draws with the NumPy reference. -ffp-contract=off keeps every multiply and add rounded
separately, as NumPy's ufuncs round them (no fused multiply-adds), so the bytes do not depend
on the compiler or the CPU.
"""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=c99", "-ffp-contract=off", "-fno-fast-math", "-fno-strict-aliasing"]

setup(ext_modules=[
    Extension("service.core._ziggurat", sources=["service/core/_ziggurat.c"],
              libraries=["m"],  # nearbyint, frexp, ldexp: exact operations
              extra_compile_args=FLAGS, optional=True),
    # float32 values as orjson's JSON text, printed without the GIL (service/output/floattext.py)
    Extension("service.output._f32text", sources=["service/output/_f32text.c"],
              extra_compile_args=FLAGS, optional=True),
])
