"""GET /healthz, /openapi.yaml, /openapi.json and /docs (Swagger UI served by the app, offline)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from service.api import meta
from service.version import ENGINE_VERSION

from .conftest import SPEC_PATH


def test_healthz(client, check_openapi):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok", "version": ENGINE_VERSION, "numpy": np.__version__}
    assert r.headers["Cache-Control"] == "no-store"
    check_openapi({"path": "/healthz", "method": "GET"}, r)


def test_openapi_yaml_is_the_repository_file(client, check_openapi):
    r = client.get("/openapi.yaml")
    assert r.status_code == 200 and r.mimetype == "application/yaml"
    assert r.get_data() == SPEC_PATH.read_bytes()
    assert client.get("/openapi.yaml", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    check_openapi({"path": "/openapi.yaml", "method": "GET"}, r)


def test_openapi_json_is_the_same_document(client, spec_dict):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.get_json() == spec_dict


def test_packaged_spec_is_the_top_level_file():
    # service/openapi.yaml is a symlink in the repository (a copy in wheels: see test_packaging)
    assert meta.spec_bytes() == SPEC_PATH.read_bytes()


def test_docs_page_uses_only_local_assets(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "/docs/swagger-ui-bundle.js" in refs and "/docs/init.js" in refs
    for ref in refs:
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.get_data()) > 0
        asset.close()
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    init = client.get("/docs/init.js").get_data(as_text=True)
    assert '"/openapi.json"' in init and "http" not in init


def test_swagger_ui_supports_openapi_31(client):
    # Swagger UI < 5 refuses `openapi: 3.1.0` documents.
    bundle = client.get("/docs/swagger-ui-bundle.js")
    version = Path(meta.swagger_ui_dir(), "VERSION").read_text().strip()
    assert int(version.lstrip("v").split(".")[0]) >= 5
    assert b"3.1" in bundle.get_data()
    bundle.close()
    assert yaml.safe_load(SPEC_PATH.read_text())["openapi"].startswith("3.1")


def test_docs_do_not_expose_other_files(client):
    for name in ("VERSION", "LICENSE", "oauth2-redirect.html", "..%2f__init__.py", "swagger-ui.js.map"):
        assert client.get(f"/docs/{name}").status_code == 404
