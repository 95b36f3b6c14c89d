"""The engine is pure NumPy: importing it must not import Flask or marshmallow."""

import subprocess
import sys


def test_engine_imports_neither_flask_nor_marshmallow():
    code = (
        "import sys, service.core, service.core.report, service.encoders, service.encoders.npy, "
        "service.encoders.npz, service.encoders.safetensors, service.encoders.jsonenc\n"
        "import pkgutil, importlib, service.core\n"
        # (_ziggurat is a plain C library loaded with ctypes by normals.py, not a Python module)
        "for m in pkgutil.iter_modules(service.core.__path__):\n"
        "    if m.name != '_ziggurat': importlib.import_module('service.core.' + m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'marshmallow', 'werkzeug'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine imported: {out.stdout.strip()}"
