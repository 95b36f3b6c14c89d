"""deploy/: the Kubernetes manifests and the nginx and compose wiring agree with the service.

- every manifest in deploy/k8s validates, offline, against the Kubernetes API's schemas
  (kubernetes-validate, strict: an unknown field is an error) of Kubernetes 1.30, the oldest the
  manifests support, and 1.37; copies with a misspelled field, a wrong type, a missing required
  field or a retired API version do not;
- the Deployment probes /healthz on the container port, has resource requests and limits, runs
  as the image's non-root user, and gives in-flight downloads longer than gunicorn's graceful
  timeout; the Service selects the Deployment's pods and targets its port;
- the HorizontalPodAutoscaler owns the Deployment's replica count and scales it on CPU; the
  PodDisruptionBudget covers the same pods, keeps one serving and never blocks a drain; probes,
  preStop and the grace period fit gunicorn's timeouts (the container's own environment, read by
  service.config);
- docker-compose.yml: `api` publishes no host port (it is scaled), `nginx` mounts deploy/nginx.conf
  and publishes the load balancer's port;
- deploy/nginx.conf keeps the settings streaming and fail-over depend on.
"""

from __future__ import annotations

import re

import pytest
import yaml

from service.config import VARIABLES, load_config
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
#: Kubernetes versions whose API schemas the manifests must satisfy: 1.30 is the oldest they
#: support (the preStop `sleep` action is on by default from 1.30), 1.37 the newest release
#: kubernetes-validate 1.37 ships.
KUBERNETES = ("1.30", "1.37")


def docs(name: str, text: str | None = None) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text() if text is None else text) if d]


def kubernetes_validate():
    """The validator (PyPI ``kubernetes-validate``: the API's JSON schemas for each Kubernetes
    release, inside the package, so nothing is downloaded)."""
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is missing: it comes with the project's dev extra "
                    "(scripts/test.sh installs it)")
    return kubernetes_validate


def validate(doc: dict, version: str) -> None:
    """Raises kubernetes_validate's ValidationError (or SchemaNotFoundError for an API version
    that release does not serve); checks the schemas used are that release's own."""
    assert kubernetes_validate().validate(doc, version, strict=True) == version


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize("name", sorted(p.name for p in K8S.glob("*.yaml")))
def test_manifest_validates_against_the_kubernetes_schemas(name, version):
    for doc in docs(name):
        validate(doc, version)


def test_the_manifests_are_the_four_resources():
    kinds = sorted(d["kind"] for p in K8S.glob("*.yaml") for d in docs(p.name))
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]


@pytest.mark.parametrize("name, old, new, path, error", [
    ("deployment.yaml", "readinessProbe:", "readinesProbe:", "spec.template.spec.containers.0",
     "'readinesProbe' was unexpected"),
    ("deployment.yaml", "containerPort: 8000", 'containerPort: "8000"',
     "spec.template.spec.containers.0.ports.0.containerPort", "'8000' is not of type 'integer'"),
    ("deployment.yaml", "sleep: {seconds: 10}", "sleep: {seconds: ten}",
     "spec.template.spec.containers.0.lifecycle.preStop.sleep.seconds", "'ten' is not of type 'integer'"),
    ("hpa.yaml", "minReplicas: 2", "minReplicas: two", "spec.minReplicas", "'two' is not of type 'integer'"),
    ("hpa.yaml", "averageUtilization: 70", "averageUtilisation: 70", "spec.metrics.0.resource.target",
     "'averageUtilisation' was unexpected"),
    ("hpa.yaml", "  scaleTargetRef: {", "  scaleTarget: {", "spec", "'scaleTargetRef' is a required property"),
    ("pdb.yaml", "  maxUnavailable: 1", "  maxUnavailable: [1]", "spec.maxUnavailable",
     "[1] is not valid under any of the given schemas"),  # an int or a percentage string
    ("service.yaml", "port: 80,", "port: eighty,", "spec.ports.0.port", "'eighty' is not of type 'integer'"),
])
def test_the_validator_rejects_a_broken_manifest(name, old, new, path, error):
    """A misspelled field, a wrong type, a missing required field: named with its path."""
    text = (K8S / name).read_text()
    assert text.count(old) == 1, old
    (doc,) = docs(name, text.replace(old, new))
    kv = kubernetes_validate()
    for version in KUBERNETES:
        with pytest.raises(kv.ValidationError) as e:
            validate(doc, version)
        where = ".".join(map(str, e.value.path))
        assert where == path and error in e.value.message, (version, where, e.value.message)


def test_the_validator_rejects_a_retired_api_version():
    (doc,) = docs("pdb.yaml", (K8S / "pdb.yaml").read_text().replace("policy/v1\n", "policy/v1beta1\n"))
    kv = kubernetes_validate()
    for version in KUBERNETES:  # policy/v1beta1 was removed in Kubernetes 1.25
        with pytest.raises(kv.SchemaNotFoundError):
            validate(doc, version)


def container() -> tuple[dict, dict, dict]:
    """(the Deployment, its pod spec, its one container)."""
    (dep,) = docs("deployment.yaml")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    return dep, pod, c


def test_deployment_and_service_fit_together():
    dep, pod, c = container()
    (svc,) = docs("service.yaml")
    assert dep["kind"] == "Deployment" and svc["kind"] == "Service"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = {e["name"]: e["value"] for e in c["env"]}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert ports["http"] == int(env["PORT"]) == int(re.search(r"^EXPOSE (\d+)", dockerfile, re.M).group(1)) == 8000
    assert svc["spec"]["ports"][0]["targetPort"] in ("http", 8000)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    res = c["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["cpu"] and res["limits"]["memory"]
    assert int(env["WEIGHTINIT_WORKERS"]) == int(res["limits"]["cpu"])  # one worker per CPU
    # Every variable is one the service reads (a misspelt one would be ignored), with a valid value.
    assert set(env) <= {v.env for v in VARIABLES}, set(env) - {v.env for v in VARIABLES}
    graceful = load_config(environ=env).graceful_timeout
    assert pod["terminationGracePeriodSeconds"] > graceful
    uid = re.search(r"^USER (\d+)", dockerfile, re.M).group(1)
    assert str(pod["securityContext"]["runAsUser"]) == uid
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])


def test_shutdown_and_probes_fit_gunicorn():
    """preStop, then gunicorn's graceful timeout, then a margin, all within the grace period; a
    liveness probe patient enough never to restart a pod that is busy, draining or whose worker
    gunicorn itself is replacing; readiness quicker to act than liveness."""
    _, pod, c = container()
    cfg = load_config(environ={e["name"]: e["value"] for e in c["env"]})
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod["terminationGracePeriodSeconds"]
    assert 5 <= pre_stop and pre_stop + cfg.graceful_timeout + 5 <= grace, (pre_stop, cfg.graceful_timeout, grace)

    def window(probe: dict) -> int:  # seconds of unbroken failure before the probe acts
        return probe["periodSeconds"] * probe["failureThreshold"]

    live, ready = c["livenessProbe"], c["readinessProbe"]
    assert window(live) > max(cfg.timeout, grace), (window(live), cfg.timeout, grace)
    assert window(ready) < window(live) and ready["timeoutSeconds"] <= live["timeoutSeconds"]
    for probe in (live, ready):
        assert probe["timeoutSeconds"] < probe["periodSeconds"]
    assert window(c["startupProbe"]) >= 30  # NumPy's import and the workers' fork, on a slow node


def test_the_autoscaler_owns_the_replica_count():
    dep, _, c = container()
    (hpa,) = docs("hpa.yaml")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (dep["apiVersion"], "Deployment",
                                                                      dep["metadata"]["name"])
    assert "replicas" not in dep["spec"], "kubectl apply would reset the autoscaler's replica count"
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] < 100
    assert c["resources"]["requests"]["cpu"]  # utilization is a share of the request


def test_the_disruption_budget_keeps_a_replica_and_never_blocks_a_drain():
    dep, _, _ = container()
    (pdb,) = docs("pdb.yaml")
    (hpa,) = docs("hpa.yaml")
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert "minAvailable" not in pdb["spec"]
    assert 1 <= pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


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
