"""deploy/: the Kubernetes manifests and the nginx and compose wiring agree with the service.

- the Deployment probes /healthz on the container port, has resource requests and limits, runs
  as the image's non-root user, and gives in-flight downloads longer than gunicorn's graceful
  timeout; the Service selects the Deployment's pods and targets its port;
- docker-compose.yml: `api` publishes no host port (it is scaled), `nginx` mounts deploy/nginx.conf
  and publishes the load balancer's port;
- deploy/nginx.conf keeps the settings streaming and fail-over depend on.
"""

from __future__ import annotations

import re

import yaml

from service.config import load_config
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def test_deployment_and_service_fit_together():
    (dep,) = docs("deployment.yaml")
    (svc,) = docs("service.yaml")
    assert dep["kind"] == "Deployment" and svc["kind"] == "Service"
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (c,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert ports["http"] == int(env["PORT"]) == 8000
    assert svc["spec"]["ports"][0]["targetPort"] in ("http", 8000)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    res = c["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["cpu"] and res["limits"]["memory"]
    assert int(env["WEIGHTINIT_WORKERS"]) == int(res["limits"]["cpu"])  # one worker per CPU
    graceful = load_config({}, environ={}).graceful_timeout
    assert pod["spec"]["terminationGracePeriodSeconds"] > graceful
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = re.search(r"^USER (\d+)", dockerfile, re.M).group(1)
    assert str(pod["spec"]["securityContext"]["runAsUser"]) == uid
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])


def test_compose_scales_api_behind_nginx():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    api, nginx = doc["services"]["api"], doc["services"]["nginx"]
    assert "ports" not in api and "8000" in [str(p) for p in api["expose"]]
    assert api["healthcheck"] == doc["services"]["weightinit"]["healthcheck"]
    assert any(v.startswith("./deploy/nginx.conf:/etc/nginx/nginx.conf") for v in nginx["volumes"])
    assert any(p.endswith(":8080") for p in nginx["ports"])
    assert nginx["depends_on"]["api"]["condition"] == "service_healthy"


def test_nginx_conf_streams_and_fails_over():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for directive in ["proxy_buffering off;", "proxy_http_version 1.1;",
                      "proxy_next_upstream error timeout non_idempotent;", "proxy_read_timeout 3600s;",
                      "server api:8000 resolve max_fails=2 fail_timeout=10s;", "listen 8080;"]:
        assert directive in conf, directive
