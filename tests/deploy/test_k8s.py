"""The Kubernetes manifests in deploy/k8s are checked statically (no cluster runs here).

Everywhere: every manifest file of the base and the components validates against the
Kubernetes 1.28 schemas (kubernetes-validate, strict) or, for Istio's kinds, against
``istio.schema.json`` (the fields we use, nothing else); every container command is an
``mdp`` command line that ``mdp``'s parser accepts; no secret is written.

Where kustomize is found (the locked build of scripts/lib/kustomize.sh, ``$MDP_KUSTOMIZE``,
or ``kubectl kustomize``), each overlay is rendered and checked whole: the schemas again,
probes and resources, a PodDisruptionBudget and a topology spread per workload, the
NetworkPolicies' flows against the flows of docs/deploy.md, the mesh policies against the
services and service accounts that exist, the autoscalers, and how the overlays differ.
Every service serves its metrics on the admin port (http-admin, 9464), which the namespace
monitoring alone reaches, past the mesh's port-level exception, to GET /metrics and health.

The observability (deploy/k8s/monitoring) is rendered too: its sizes per environment, the
platform's pods Prometheus scrapes, the rules it loads (those of deploy/prometheus/rules,
byte for byte) and the collector the services send their spans to.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from tests.deploy.test_prometheus_rules import run_promtool
from tests.mdp.test_compose import every_command_parser

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "staging", "prod", "dr-standby", "dr-active")
EXTERNAL = {"prod", "dr-standby", "dr-active"}
"""The overlays whose Kafka and PostgreSQL are outside the cluster (../external)."""
KUBERNETES = "1.28"
ISTIO_KINDS = {"PeerAuthentication", "AuthorizationPolicy", "DestinationRule"}
WORKLOADS = {"Deployment", "StatefulSet"}
SERVICES = {
    "edge", "auth", "api", "gateway", "main-api", "trading", "trading-follow", "alerts",
    "worker", "writer", "ingest",
}  # fmt: skip
IMAGE = "ganntec/mdp"
NAMESPACE = "mdp"
EXPORTER = "kafka-exporter"
"""The Kafka exporter, beside the services in the namespace (not an mdp command): a Kafka
client of its own, scraped on the admin port as they are (base/kafka-exporter.yaml)."""
DEPLOYMENTS = SERVICES | {EXPORTER}

# The flows of docs/deploy.md ("Flows"): (from, to, port) between the platform's pods.
SERVICE_FLOWS = {
    ("edge", "api", 8000), ("edge", "gateway", 8765), ("edge", "auth", 8010),
    ("edge", "main-api", 8040), ("edge", "trading", 8030),
    ("api", "auth", 8010), ("gateway", "auth", 8010), ("main-api", "auth", 8010),
    ("trading", "auth", 8010),
}  # fmt: skip
KAFKA_CLIENTS = {
    "edge", "auth", "api", "gateway", "main-api", "trading", "trading-follow", "alerts",
    "worker", "writer", "ingest", "kafka-topics", EXPORTER,
}  # fmt: skip
DATABASE_CLIENTS = {
    "auth", "api", "gateway", "main-api", "trading", "trading-follow", "alerts", "worker",
    "writer", "db-migrate",
}  # fmt: skip
DATA_FLOWS = {(client, "kafka", 9092) for client in KAFKA_CLIENTS} | {
    (client, "postgres", 5432) for client in DATABASE_CLIENTS
}
LAG_SCALED = {"worker", "writer", "alerts"}
CPU_SCALED = {"edge", "auth", "api", "main-api"}
SINGLE = {"trading", "trading-follow", "ingest"}
"""Never two at once (Recreate, no autoscaler); the Kafka exporter too, whose copies would
export every series twice (the sums the alerts and the autoscalers read would double)."""

Doc = dict[str, Any]


# -- reading the manifests ---------------------------------------------------------------------


def load_all(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kustomizations() -> Iterator[Path]:
    yield from sorted(K8S.rglob("kustomization.yaml"))


def resource_files() -> list[Path]:
    """The files the kustomizations list as resources (not patches, which are partial)."""
    files = []
    for kustomization in kustomizations():
        for entry in yaml.safe_load(kustomization.read_text()).get("resources", []):
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                files.append(path)
    return sorted(set(files))


def manifest_files() -> list[Path]:
    return sorted(path for path in K8S.rglob("*.yaml") if path.name != "kustomization.yaml")


def kustomize() -> list[str] | None:
    """The command that renders an overlay: ``$MDP_KUSTOMIZE``, scripts/lib/kustomize.sh's
    build, a ``kustomize`` on the PATH, else ``kubectl kustomize``; None without any."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = cache / "ganntec-mdp" / f"kustomize-{locked_kustomize_version()}" / "kustomize"
    for candidate in (os.environ.get("MDP_KUSTOMIZE"), str(built), shutil.which("kustomize")):
        if candidate and os.access(candidate, os.X_OK):
            return [candidate, "build"]
    kubectl = shutil.which("kubectl")
    return [kubectl, "kustomize"] if kubectl else None


def locked_kustomize_version() -> str:
    script = (ROOT / "scripts" / "lib" / "kustomize.sh").read_text()
    found = re.search(r'^KUSTOMIZE_VERSION="(v[0-9.]+)"$', script, re.MULTILINE)
    assert found, "scripts/lib/kustomize.sh names KUSTOMIZE_VERSION"
    return found.group(1)


@functools.cache
def rendered(overlay: str, tree: str = "overlays") -> tuple[Doc, ...]:
    """The overlay ``overlay`` of the platform (``tree`` "overlays") or of its observability
    ("monitoring/overlays"), as kustomize renders it."""
    command = kustomize()
    if command is None:
        pytest.skip("neither kustomize (scripts/lib/kustomize.sh builds it with Go) nor kubectl")
    done = subprocess.run(
        [*command, str(K8S / tree / overlay)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return tuple(load_all(done.stdout))


def of_kind(docs: tuple[Doc, ...] | list[Doc], *kinds: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] in kinds]


def named(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    (found,) = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    return found


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def pod_labels(doc: Doc) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels


def containers(doc: Doc) -> list[Doc]:
    found: list[Doc] = pod_spec(doc)["containers"]
    return found


def pods(docs: tuple[Doc, ...]) -> list[Doc]:
    return of_kind(docs, "Deployment", "StatefulSet", "Job")


def meshed(doc: Doc) -> bool:
    annotations: dict[str, str] = doc["spec"]["template"]["metadata"].get("annotations", {})
    return annotations.get("sidecar.istio.io/inject") != "false"


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


# -- validation ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads and parses its schema files on every call (the definitions
    alone are megabytes): this module's few hundred validations read each one once."""
    with pytest.MonkeyPatch.context() as patch:
        reader = kubernetes_validate.utils.schema_contents
        patch.setattr(kubernetes_validate.utils, "schema_contents", functools.cache(reader))
        yield


@functools.cache
def istio_schema() -> Doc:
    schema: Doc = json.loads((Path(__file__).parent / "istio.schema.json").read_text())
    return schema


def validate(doc: Doc) -> None:
    """Raises when ``doc`` is not a valid object of Kubernetes 1.28 (strict: no unknown
    field) or of the Istio fields we use."""
    if doc["kind"] in ISTIO_KINDS:
        jsonschema.validate(doc, istio_schema())
    else:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


@pytest.mark.parametrize("path", resource_files(), ids=lambda path: str(path.relative_to(K8S)))
def test_every_manifest_file_validates_against_the_kubernetes_1_28_schemas(path: Path) -> None:
    documents = load_all(path.read_text())
    assert documents, f"{path}: no manifest"
    for doc in documents:
        validate(doc)


def test_every_manifest_file_is_a_resource_or_a_patch_of_a_kustomization() -> None:
    listed = set(resource_files())
    for kustomization in kustomizations():
        for patch in yaml.safe_load(kustomization.read_text()).get("patches", []):
            if "path" in patch:
                listed.add((kustomization.parent / patch["path"]).resolve())
    assert set(manifest_files()) == listed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_validates_against_the_kubernetes_1_28_schemas(
    overlay: str,
) -> None:
    docs = rendered(overlay)
    for doc in docs:
        validate(doc)
        # named, not left to kubectl's current namespace: the components' objects too
        assert doc["metadata"].get("namespace") == NAMESPACE or doc["kind"] == "Namespace", (
            doc["kind"], doc["metadata"]["name"])  # fmt: skip


def test_a_manifest_with_an_unknown_field_or_a_bad_mode_is_refused() -> None:
    deployment = next(
        doc for doc in load_all((K8S / "base" / "api.yaml").read_text())
        if doc["kind"] == "Deployment"
    )  # fmt: skip
    containers(deployment)[0]["livenessprobe"] = containers(deployment)[0]["livenessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    peer = load_all((K8S / "base" / "istio" / "peerauthentication.yaml").read_text())[0]
    peer["spec"]["mtls"]["mode"] = "STRCT"
    with pytest.raises(jsonschema.ValidationError):
        validate(peer)


# -- commands --------------------------------------------------------------------------------------


def mdp_containers(docs: list[Doc] | tuple[Doc, ...]) -> Iterator[tuple[str, Doc]]:
    for doc in pods(tuple(docs)):
        for container in containers(doc):
            if container["image"].split(":")[0] == IMAGE:
                yield doc["metadata"]["name"], container


def base_documents() -> list[Doc]:
    return [doc for path in resource_files() for doc in load_all(path.read_text())]


def test_every_container_command_is_an_mdp_command_line_that_parses() -> None:
    parser = every_command_parser()
    found = dict(mdp_containers(base_documents()))
    assert set(found) == SERVICES | {"kafka-topics", "db-migrate"}
    for name, container in found.items():
        command = container["command"]
        assert command[0] == "mdp", name
        parser.parse_args(command[1:])  # exits (fails the test) on an unknown command or option


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_command_parses(overlay: str) -> None:
    parser = every_command_parser()
    for _, container in mdp_containers(rendered(overlay)):
        assert container["command"][0] == "mdp"
        parser.parse_args(container["command"][1:])


def option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, given in enumerate(argv[:-1]) if given == option]


def command_of(docs: tuple[Doc, ...], kind: str, name: str) -> list[str]:
    command: list[str] = containers(named(docs, kind, name))[0]["command"]
    return command


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_edge_reaches_every_service_at_a_port_it_serves(overlay: str) -> None:
    docs = rendered(overlay)
    edge = command_of(docs, "Deployment", "edge")
    routes = {"--api": "api", "--gateway": "gateway", "--auth": "auth",
              "--main-api": "main-api", "--trading": "trading"}  # fmt: skip
    for option, service in routes.items():
        (server,) = option_values(edge, option)
        host, port = server.split(":")
        assert host == service, option
        ports = {entry["port"] for entry in named(docs, "Service", host)["spec"]["ports"]}
        assert int(port) in ports, server
        command = command_of(docs, "Deployment", service)
        assert option_values(command, "--port") == [port], service
        assert option_values(command, "--host") == ["0.0.0.0"], service


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_checks_tokens_against_the_auth_service_key_set(overlay: str) -> None:
    docs = rendered(overlay)
    for name in ("api", "gateway", "main-api", "trading"):
        assert option_values(command_of(docs, "Deployment", name), "--jwks-url") == [
            "http://auth:8010/auth/.well-known/jwks.json"
        ], name


# -- secrets ---------------------------------------------------------------------------------------


def test_no_secret_is_written_in_the_manifests() -> None:
    for path in K8S.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".yml", ".json", ".sh", ""}:
            text = path.read_text(errors="replace")
            assert not re.search(r"postgres(ql)?://[^@\s/]*:[^@\s/]*@", text), path
            assert "kind: Secret" not in text, f"{path}: a Secret is the operator's to make"
    for doc in base_documents():
        if doc["kind"] not in {"Deployment", "StatefulSet", "Job"}:
            continue
        for container in containers(doc):
            for variable in container.get("env", []):
                name = variable["name"]
                if re.search(r"(DATABASE_URL|PASSWORD|SECRET|TOKEN)$", name):
                    pytest.fail(f"{doc['metadata']['name']}: {name} inline")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_database_urls_come_from_the_secret_as_files(overlay: str) -> None:
    docs = rendered(overlay)
    present = {doc["metadata"]["name"] for doc in pods(docs)}
    assert present >= SERVICES
    clients = {
        doc["metadata"]["name"] for doc in pods(docs)
        if any(v["name"] == "DATABASE_URL_FILE" for v in containers(doc)[0].get("env", []))
    }  # fmt: skip
    assert clients == DATABASE_CLIENTS & present
    for doc in pods(docs):
        name = doc["metadata"]["name"]
        (container,) = containers(doc)
        files = {v["name"]: v["value"] for v in container.get("env", []) if v["name"].endswith(
            "_FILE")}  # fmt: skip
        if name not in DATABASE_CLIENTS:
            assert "DATABASE_URL_FILE" not in files, name
            continue
        volumes = {volume["name"]: volume for volume in pod_spec(doc)["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        expected = ["DATABASE_URL_FILE"]
        if name == "gateway":
            expected += ["TRADING_DATABASE_URL_FILE", "MAIN_API_DATABASE_URL_FILE"]
        for variable in expected:
            folder, file = files[variable].rsplit("/", 1)
            secret = volumes[mounts[folder]]["secret"]
            assert secret["secretName"] == "mdp-database", name
            assert {"key": "database_url", "path": file} in secret["items"], name


# -- workloads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_there_is_a_deployment_per_service(overlay: str) -> None:
    docs = rendered(overlay)
    assert {doc["metadata"]["name"] for doc in of_kind(docs, "Deployment")} == DEPLOYMENTS
    data = {doc["metadata"]["name"] for doc in of_kind(docs, "StatefulSet")}
    assert data == (set() if overlay in EXTERNAL else {"kafka", "postgres"})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_the_three_probes_and_resources(overlay: str) -> None:
    for doc in of_kind(rendered(overlay), *WORKLOADS):
        name = doc["metadata"]["name"]
        for container in containers(doc):
            ports = {port.get("name"): port["containerPort"] for port in container.get(
                "ports", [])}  # fmt: skip
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{name}: no {probe}"
                check = container[probe]
                if "httpGet" in check:
                    port = check["httpGet"]["port"]
                    assert port in ports or port in ports.values(), f"{name}: {probe} port"
                    assert re.fullmatch(r"(/auth)?/(healthz|readyz)", check["httpGet"]["path"])
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, (name, bound)


ADMIN_PORT = 9464
ADMIN_SERVICES = ("worker", "writer", "alerts", "ingest")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_services_without_http_are_probed_on_their_admin_port(overlay: str) -> None:
    docs = {doc["metadata"]["name"]: doc for doc in of_kind(rendered(overlay), "Deployment")}
    for name in ADMIN_SERVICES:
        (container,) = containers(docs[name])
        command = container["command"]
        at = command.index("--admin-port")
        assert command[at + 1] == str(ADMIN_PORT), name
        assert command[command.index("--admin-host") + 1] == "0.0.0.0", name
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["http-admin"] == ADMIN_PORT, name
        paths = {probe: container[probe]["httpGet"] for probe in (
            "startupProbe", "livenessProbe", "readinessProbe")}  # fmt: skip
        assert {p["port"] for p in paths.values()} == {"http-admin"}, name
        assert paths["readinessProbe"]["path"] == "/readyz", name
        assert paths["livenessProbe"]["path"] == "/healthz", name


def admin_options(name: str) -> tuple[str, str]:
    """The options that set a service's admin port and its address: HAProxy's exporter for
    the edge, the admin server of every other command."""
    if name == "edge":
        return "--metrics-port", "--metrics-host"
    return "--admin-port", "--admin-host"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_serves_its_metrics_on_the_admin_port_http_admin(overlay: str) -> None:
    deployments = of_kind(rendered(overlay), "Deployment")
    assert {doc["metadata"]["name"] for doc in deployments} == DEPLOYMENTS
    for doc in deployments:
        name = doc["metadata"]["name"]
        (container,) = containers(doc)
        if name == EXPORTER:  # its own flag: on every address, at the admin port
            assert f"--web.listen-address=:{ADMIN_PORT}" in container["args"]
        else:
            port, host = admin_options(name)
            command = container["command"]
            assert option_values(command, port) == [str(ADMIN_PORT)], name
            assert option_values(command, host) == ["0.0.0.0"], name
        ports = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
        assert ports["http-admin"] == ADMIN_PORT, name
        assert list(ports.values()).count(ADMIN_PORT) == 1, name


def monitoring_peer(peer: Doc) -> bool:
    labels: dict[str, str] | None = peer.get("namespaceSelector", {}).get("matchLabels")
    return labels == {"kubernetes.io/metadata.name": "monitoring"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_reaches_every_service_on_its_admin_port_and_nowhere_else(
    overlay: str,
) -> None:
    """Every ingress rule that admits the namespace monitoring admits it on 9464 alone (and
    nobody else with it); every service's pods are admitted there."""
    docs = rendered(overlay)
    admitted: set[str] = set()
    for policy in policies(docs):
        spec = policy["spec"]
        for rule in spec.get("ingress", []):
            peers = rule.get("from", [])
            if not any(monitoring_peer(peer) for peer in peers):
                continue
            name = policy["metadata"]["name"]
            assert all(monitoring_peer(peer) and set(peer) == {"namespaceSelector"}
                       for peer in peers), name  # fmt: skip
            assert rule["ports"] == [{"protocol": "TCP", "port": ADMIN_PORT}], name
            admitted |= {
                doc["metadata"]["name"] for doc in pods(docs)
                if selects(spec["podSelector"], pod_labels(doc))
            }  # fmt: skip
    assert admitted == DEPLOYMENTS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_disruption_budget_selecting_it(overlay: str) -> None:
    docs = rendered(overlay)
    budgets = of_kind(docs, "PodDisruptionBudget")
    for doc in of_kind(docs, *WORKLOADS):
        mine = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(doc))]
        assert len(mine) == 1, doc["metadata"]["name"]
        # one replica may always go: a node with a single-replica service can be drained
        assert mine[0]["spec"].get("maxUnavailable", 0) >= 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_spreads_over_zones_by_itself(overlay: str) -> None:
    docs = rendered(overlay)
    for doc in of_kind(docs, *WORKLOADS):
        labels = pod_labels(doc)
        constraints = pod_spec(doc).get("topologySpreadConstraints", [])
        zones = [c for c in constraints if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert zones, doc["metadata"]["name"]
        for constraint in zones:
            # matchLabelKeys: the pod's own values of these keys are added to the selector
            narrowed = {key: labels[key] for key in constraint.get("matchLabelKeys", [])
                        if key in labels}  # fmt: skip
            assert "app" in narrowed or constraint["labelSelector"]["matchLabels"].get("app")
            assert selects(constraint["labelSelector"], labels)
            for other in of_kind(docs, *WORKLOADS):
                if other is not doc:
                    theirs = pod_labels(other)
                    mixes = selects(constraint["labelSelector"], theirs) and all(
                        theirs.get(key) == value for key, value in narrowed.items()
                    )
                    assert not mixes, (doc["metadata"]["name"], other["metadata"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_trading_and_the_feed_never_run_twice(overlay: str) -> None:
    docs = rendered(overlay)
    for name in SINGLE | {EXPORTER}:
        deployment = named(docs, "Deployment", name)
        assert deployment["spec"]["replicas"] <= 1
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
    targets = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(docs, "HorizontalPodAutoscaler")
    }
    assert not targets & (SINGLE | {EXPORTER})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_candle_workers_are_replaced_whole_never_two_journal_versions_at_once(
    overlay: str,
) -> None:
    worker = named(rendered(overlay), "Deployment", "worker")
    assert worker["spec"]["strategy"]["type"] == "Recreate"


# -- autoscaling ---------------------------------------------------------------------------------


def partitions(docs: tuple[Doc, ...]) -> int:
    return int(option_values(command_of(docs, "Job", "kafka-topics"), "--partitions")[0])


@pytest.mark.parametrize("overlay", ["staging", "prod"])
def test_the_autoscalers_scale_each_service_on_what_loads_it(overlay: str) -> None:
    docs = rendered(overlay)
    scalers = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind(
        docs, "HorizontalPodAutoscaler")}  # fmt: skip
    assert set(scalers) == SERVICES - SINGLE
    for name, hpa in scalers.items():
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        named(docs, "Deployment", name)
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        (metric,) = hpa["spec"]["metrics"]
        if name in LAG_SCALED:
            assert metric["type"] == "External"
            assert metric["external"]["metric"]["name"] == "kafka_consumergroup_lag"
            labels = metric["external"]["metric"]["selector"]["matchLabels"]
            command = command_of(docs, "Deployment", name)
            assert [labels["consumergroup"]] == option_values(command, "--group"), name
            # more consumers than partitions would sit idle
            assert hpa["spec"]["maxReplicas"] <= partitions(docs), name
        elif name == "gateway":
            assert metric["type"] == "Pods"
            assert metric["pods"]["metric"]["name"] == "mdp_gateway_clients"
        else:
            assert name in CPU_SCALED
            assert metric == {
                "type": "Resource",
                "resource": {"name": "cpu", "target": metric["resource"]["target"]},
            }


# -- network policies ----------------------------------------------------------------------------


def policies(docs: tuple[Doc, ...]) -> list[Doc]:
    return of_kind(docs, "NetworkPolicy")


def admits(peers: list[Doc] | None, labels: dict[str, str]) -> bool:
    """A rule's from/to list admits a pod of this namespace (no list: anyone)."""
    if peers is None:
        return True
    return any(
        "podSelector" in peer and "namespaceSelector" not in peer
        and selects(peer["podSelector"], labels)
        for peer in peers
    )  # fmt: skip


def on_port(rule: Doc, port: int) -> bool:
    given = rule.get("ports")
    return given is None or any(entry.get("port") in (None, port) for entry in given)


def allowed(docs: tuple[Doc, ...], source: Doc, target: Doc, port: int) -> bool:
    """Both ends' policies let ``source``'s pods open ``port`` on ``target``'s pods."""
    src, dst = pod_labels(source), pod_labels(target)
    ingress = egress = False
    for policy in policies(docs):
        spec = policy["spec"]
        if selects(spec["podSelector"], dst):
            ingress = ingress or any(
                admits(rule.get("from"), src) and on_port(rule, port)
                for rule in spec.get("ingress", [])
            )
        if selects(spec["podSelector"], src):
            egress = egress or any(
                admits(rule.get("to"), dst) and on_port(rule, port)
                for rule in spec.get("egress", [])
            )
    return ingress and egress


def served_ports(doc: Doc) -> set[int]:
    return {port["containerPort"] for c in containers(doc) for port in c.get("ports", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_network_policies_allow_exactly_the_platform_flows(overlay: str) -> None:
    docs = rendered(overlay)
    everything = pods(docs)
    flows = {
        (source["metadata"]["name"], target["metadata"]["name"], port)
        for source in everything
        for target in everything
        for port in served_ports(target)
        if allowed(docs, source, target, port)
    }
    expected = SERVICE_FLOWS | (set() if overlay in EXTERNAL else DATA_FLOWS)
    assert flows == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_network_policy_of_its_own_behind_a_default_deny(
    overlay: str,
) -> None:
    docs = rendered(overlay)
    deny = named(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for doc in pods(docs):
        own = [
            policy for policy in policies(docs)
            if policy["spec"]["podSelector"] and selects(policy["spec"]["podSelector"],
                                                         pod_labels(doc))
            and set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        ]  # fmt: skip
        assert own, doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_edge_is_reached_from_outside_and_only_main_api_leaves(overlay: str) -> None:
    docs = rendered(overlay)
    for policy in policies(docs):
        spec = policy["spec"]
        for rule in spec.get("ingress", []):
            if "from" not in rule:
                assert spec["podSelector"] == {"matchLabels": {"app": "edge"}}
                assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
        for rule in spec.get("egress", []):
            for peer in rule.get("to", []):
                if "ipBlock" in peer and peer["ipBlock"]["cidr"] == "0.0.0.0/0":
                    assert spec["podSelector"] == {"matchLabels": {"app": "main-api"}}
                    assert "10.0.0.0/8" in peer["ipBlock"]["except"]
    if overlay in EXTERNAL:
        # the managed data stores: by network, to their ports only
        for name, port in (("kafka-clients", 9092), ("postgres-clients", 5432)):
            (rule,) = named(docs, "NetworkPolicy", name)["spec"]["egress"]
            assert rule["ports"] == [{"protocol": "TCP", "port": port}]
            assert [set(peer) for peer in rule["to"]] == [{"ipBlock"}]


# -- the mesh --------------------------------------------------------------------------------------


def principal(account: str) -> str:
    return f"cluster.local/ns/{NAMESPACE}/sa/{account}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mtls_is_strict_for_the_whole_namespace(overlay: str) -> None:
    docs = rendered(overlay)
    default = named(docs, "PeerAuthentication", "default")
    assert default["spec"] == {"mtls": {"mode": "STRICT"}}
    peers = of_kind(docs, "PeerAuthentication")
    for peer in peers:
        assert peer["spec"]["mtls"]["mode"] == "STRICT"
    namespace = named(docs, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["istio-injection"] == "enabled"
    # the exceptions, port by port: the admin port of every service (Prometheus, outside the
    # mesh) and the edge's public port (the load balancer); each pod has one policy of its own
    for doc in of_kind(docs, "Deployment"):
        name = doc["metadata"]["name"]
        (own,) = [peer for peer in peers if "selector" in peer["spec"] and selects(
            peer["spec"]["selector"], pod_labels(doc))]  # fmt: skip
        plain = {"8080", str(ADMIN_PORT)} if name == "edge" else {str(ADMIN_PORT)}
        assert own["spec"]["portLevelMtls"] == {
            port: {"mode": "PERMISSIVE"} for port in plain
        }, name  # fmt: skip
        # Istio applies a port-level exception only to a port some Service binds
        for port in plain:
            assert any(
                selects({"matchLabels": service["spec"].get("selector", {"": "none"})},
                        pod_labels(doc))
                and any(bound(entry, containers(doc)[0]) == int(port)
                        for entry in service["spec"]["ports"])
                for service in of_kind(docs, "Service")
            ), (name, port)  # fmt: skip
    for peer in peers:
        if "selector" in peer["spec"]:
            chosen = [doc for doc in of_kind(docs, "Deployment") if selects(
                peer["spec"]["selector"], pod_labels(doc))]  # fmt: skip
            assert chosen, peer["metadata"]["name"]


def bound(entry: Doc, container: Doc) -> int:
    """The container port a Service's port entry sends to (its targetPort by name or number,
    else its port)."""
    target = entry.get("targetPort", entry["port"])
    if isinstance(target, int):
        return target
    (found,) = [port["containerPort"] for port in container["ports"] if port["name"] == target]
    return int(found)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_admin_port_is_open_to_get_metrics_and_health_and_nothing_more(overlay: str) -> None:
    """One ALLOW policy for every workload lets the admin port be read: GET of /metrics,
    /healthz and /readyz on 9464 only. It can name no source (Prometheus's plain scrapes carry
    no peer identity): the NetworkPolicies keep the port to the namespace monitoring."""
    docs = rendered(overlay)
    admin = [
        policy for policy in of_kind(docs, "AuthorizationPolicy")
        if any(str(ADMIN_PORT) in to["operation"].get("ports", [])
               for rule in policy["spec"].get("rules", []) for to in rule.get("to", []))
    ]  # fmt: skip
    assert len(admin) == 1
    (spec,) = [policy["spec"] for policy in admin]
    assert "selector" not in spec
    assert spec["action"] == "ALLOW"
    assert spec["rules"] == [{"to": [{"operation": {
        "ports": [str(ADMIN_PORT)], "methods": ["GET"],
        "paths": ["/metrics", "/healthz", "/readyz"],
    }}]}]  # fmt: skip
    # and nothing else opens any port without naming it
    for policy in of_kind(docs, "AuthorizationPolicy"):
        for rule in policy["spec"].get("rules", []):
            assert all(to["operation"].get("ports") for to in rule["to"]), policy["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_meshed_service_has_an_authorization_policy_naming_existing_callers(
    overlay: str,
) -> None:
    docs = rendered(overlay)
    accounts = {doc["metadata"]["name"] for doc in of_kind(docs, "ServiceAccount")}
    used = {str(pod_spec(doc)["serviceAccountName"]) for doc in pods(docs) if meshed(doc)}
    assert used <= accounts
    rules = of_kind(docs, "AuthorizationPolicy")
    assert named(docs, "AuthorizationPolicy", "allow-nothing")["spec"] == {}
    for policy in rules:
        spec = policy["spec"]
        # without a selector: every workload (here, every service: the admin port)
        chosen = of_kind(docs, "Deployment")
        if "selector" in spec:
            chosen = [doc for doc in pods(docs) if selects(spec["selector"], pod_labels(doc))]
            assert chosen, f"{policy['metadata']['name']} selects no workload"
        for rule in spec.get("rules", []):
            for source in rule.get("from", []):
                for name in source["source"].get("principals", []):
                    assert name in {principal(account) for account in used}, name
            for operation in rule.get("to", []):
                for port in operation["operation"].get("ports", []):
                    assert all(int(port) in served_ports(doc) for doc in chosen), port
    for doc in pods(docs):
        if meshed(doc):
            mine = [p for p in rules if "selector" in p["spec"] and selects(
                p["spec"]["selector"], pod_labels(doc))]  # fmt: skip
            assert len(mine) == 1, doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_authorization_policies_allow_the_network_flows_by_identity(overlay: str) -> None:
    docs = rendered(overlay)
    accounts = {doc["metadata"]["name"]: pod_spec(doc)["serviceAccountName"] for doc in
                of_kind(docs, "Deployment")}  # fmt: skip
    for source, target, port in SERVICE_FLOWS:
        policy = named(docs, "AuthorizationPolicy", target)["spec"]
        assert any(
            principal(accounts[source]) in from_["source"].get("principals", [])
            and any(str(port) in to["operation"].get("ports", []) for to in rule["to"])
            for rule in policy["rules"] for from_ in rule.get("from", [])
        ), (source, target)  # fmt: skip
    # the services that check tokens only fetch the auth service's key set
    for rule in named(docs, "AuthorizationPolicy", "auth")["spec"]["rules"]:
        callers = rule["from"][0]["source"]["principals"]
        if callers != [principal("edge")]:
            assert rule["to"][0]["operation"]["paths"] == ["/auth/.well-known/jwks.json"]
            assert rule["to"][0]["operation"]["methods"] == ["GET"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_called_in_the_mesh_has_a_destination_rule(overlay: str) -> None:
    docs = rendered(overlay)
    services = {doc["metadata"]["name"] for doc in of_kind(docs, "Service")}
    rules = {}
    for rule in of_kind(docs, "DestinationRule"):
        host = rule["spec"]["host"]
        service, suffix = host.split(".", 1)
        assert suffix == f"{NAMESPACE}.svc.cluster.local", host
        assert service in services, host
        policy = rule["spec"]["trafficPolicy"]
        assert policy["tls"] == {"mode": "ISTIO_MUTUAL"}
        assert {"tcp", "http"} <= set(policy["connectionPool"]), host
        assert policy["outlierDetection"]["consecutive5xxErrors"] >= 1, host
        rules[service] = policy
    assert set(rules) == {target for _, target, _ in SERVICE_FLOWS}
    # a retried order could be placed twice
    assert rules["trading"]["connectionPool"]["http"]["maxRetries"] == 0


# -- overlays ----------------------------------------------------------------------------------


def replicas(docs: tuple[Doc, ...]) -> dict[str, int]:
    return {doc["metadata"]["name"]: doc["spec"]["replicas"] for doc in of_kind(docs, *WORKLOADS)}


def requested(docs: tuple[Doc, ...], name: str) -> Doc:
    request: Doc = containers(named(docs, "Deployment", name))[0]["resources"]["requests"]
    return request


def quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for unit, factor in units.items():
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def test_dev_runs_one_of_each_small_and_without_autoscalers() -> None:
    docs = rendered("dev")
    assert set(replicas(docs).values()) == {1}
    assert not of_kind(docs, "HorizontalPodAutoscaler")
    assert named(docs, "Service", "edge")["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_staging_mirrors_prod_at_a_smaller_scale() -> None:
    staging, prod = rendered("staging"), rendered("prod")

    def shape(docs: tuple[Doc, ...]) -> set[tuple[str, str]]:
        return {(doc["kind"], doc["metadata"]["name"]) for doc in docs}

    data = shape(tuple(doc for path in (K8S / "data").glob("*.yaml") if path.name != (
        "kustomization.yaml") for doc in load_all(path.read_text())))  # fmt: skip
    assert shape(staging) - data == shape(prod) - {
        ("NetworkPolicy", "kafka-clients"), ("NetworkPolicy", "postgres-clients")
    }  # fmt: skip
    for name in SERVICES - {"kafka-topics"}:
        assert command_of(staging, "Deployment", name) == command_of(prod, "Deployment", name)
    assert partitions(staging) < partitions(prod)
    for name, count in replicas(staging).items():
        if name in replicas(prod):
            assert count <= replicas(prod)[name], name
    for hpa in of_kind(staging, "HorizontalPodAutoscaler"):
        theirs = named(prod, "HorizontalPodAutoscaler", hpa["metadata"]["name"])
        assert hpa["spec"]["maxReplicas"] < theirs["spec"]["maxReplicas"]
    for name in SERVICES:
        for resource in ("cpu", "memory"):
            assert quantity(requested(staging, name)[resource]) <= quantity(
                requested(prod, name)[resource]
            ), (name, resource)
    for docs in (staging, prod):
        assert named(docs, "Service", "edge")["spec"]["type"] == "LoadBalancer"
        assert [p["port"] for p in named(docs, "Service", "edge")["spec"]["ports"]] == [8080]


def test_prod_runs_at_least_three_of_each_replicated_service() -> None:
    docs = rendered("prod")
    for name, count in replicas(docs).items():
        assert count == 1 if name in SINGLE | {EXPORTER} else count >= 3, name
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] >= 3
    dev = rendered("dev")
    for name in SERVICES:
        assert quantity(requested(dev, name)["memory"]) <= quantity(requested(docs, name)["memory"])


def test_the_standby_region_runs_the_readers_warm_and_no_writer() -> None:
    standby, active = rendered("dr-standby"), rendered("dr-active")
    writers = {
        "auth", "main-api", "trading", "trading-follow", "alerts", "worker", "writer", "ingest",
    }  # fmt: skip
    for name, count in replicas(standby).items():
        assert count == (0 if name in writers else replicas(active)[name]), name
    for name in SERVICES:
        assert command_of(standby, "Deployment", name) == command_of(active, "Deployment", name)
    # the exporter reads the lag and the brokers of the region's own cluster, warm as well
    assert exporter_brokers(standby) == exporter_brokers(active)
    targets = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(standby, "HorizontalPodAutoscaler")
    }
    assert targets == SERVICES - SINGLE - writers
    assert not of_kind(standby, "Job"), "the migration and the topics are region A's"


def bootstrap(docs: tuple[Doc, ...]) -> str:
    return str(named(docs, "ConfigMap", "mdp-env")["data"]["KAFKA_BOOTSTRAP"])


def exporter_brokers(docs: tuple[Doc, ...]) -> list[str]:
    """The brokers the Kafka exporter reads: its --kafka.server flags, one each."""
    (container,) = containers(named(docs, "Deployment", EXPORTER))
    return [
        arg.removeprefix("--kafka.server=") for arg in container["args"]
        if arg.startswith("--kafka.server=")
    ]  # fmt: skip


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kafka_exporter_reads_the_brokers_the_services_use(overlay: str) -> None:
    """Its flags name the brokers of KAFKA_BOOTSTRAP, each once (it reads no comma list), in
    every overlay: the cluster's StatefulSet, region A's and region B's managed brokers."""
    docs = rendered(overlay)
    assert exporter_brokers(docs) == bootstrap(docs).split(",")


def data_networks(docs: tuple[Doc, ...]) -> list[str]:
    return [
        named(docs, "NetworkPolicy", name)["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"]
        for name in ("kafka-clients", "postgres-clients")
    ]


def test_the_standby_region_takes_over_as_prod_with_its_own_data_stores() -> None:
    active, standby, prod = rendered("dr-active"), rendered("dr-standby"), rendered("prod")
    assert bootstrap(active) == bootstrap(standby) != bootstrap(prod)
    assert data_networks(active) == data_networks(standby)
    assert not set(data_networks(active)) & set(data_networks(prod))

    def without_addresses(docs: tuple[Doc, ...]) -> list[str]:
        kept = [
            doc for doc in docs
            if doc["kind"] != "ConfigMap"
            and doc["metadata"]["name"] not in {"kafka-clients", "postgres-clients"}
            and (doc["kind"], doc["metadata"]["name"]) != ("Deployment", EXPORTER)
        ]  # fmt: skip
        return sorted(json.dumps(doc, sort_keys=True) for doc in kept)

    assert without_addresses(active) == without_addresses(prod)
    assert exporter_brokers(active) != exporter_brokers(prod)


def test_the_kustomize_the_scripts_build_is_the_one_go_sum_locks() -> None:
    tools = K8S / "tools"
    version = locked_kustomize_version()
    assert f"sigs.k8s.io/kustomize/kustomize/v5 {version}" in (tools / "go.mod").read_text()
    assert f"sigs.k8s.io/kustomize/kustomize/v5 {version} h1:" in (tools / "go.sum").read_text()


# -- the observability services (deploy/k8s/monitoring) ------------------------------------

MONITORING = "monitoring/overlays"
MONITORING_OVERLAYS = ("dev", "staging", "prod")
OBSERVABILITY = {
    "prometheus", "alertmanager", "blackbox-exporter", "grafana", "otel-collector", "jaeger",
    "prometheus-adapter",
}  # fmt: skip


def monitoring(overlay: str) -> tuple[Doc, ...]:
    return rendered(overlay, MONITORING)


@pytest.mark.parametrize("overlay", MONITORING_OVERLAYS)
def test_the_observability_renders_valid_in_its_namespace_with_probes_and_resources(
    overlay: str,
) -> None:
    docs = monitoring(overlay)
    assert {doc["metadata"]["name"] for doc in of_kind(docs, *WORKLOADS)} == OBSERVABILITY
    for doc in docs:
        validate(doc)
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding", "APIService"):
            # but the adapter's leave to read the API server's front-proxy CA, in kube-system
            home = "kube-system" if doc["kind"] == "RoleBinding" else "monitoring"
            assert doc["metadata"]["namespace"] == home, doc["metadata"]["name"]
    for doc in of_kind(docs, *WORKLOADS):
        (container,) = containers(doc)
        name = doc["metadata"]["name"]
        assert ":" in container["image"], f"{name}: its image pinned"
        assert not container["image"].endswith(":latest"), f"{name}: its image pinned"
        ports = {port["name"] for port in container["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in ports, (name, probe)
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) >= {"cpu", "memory"}, (name, bound)


def flags(container: Doc) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in container.get("args", []))


def sizes(docs: tuple[Doc, ...]) -> dict[str, float]:
    """What an environment gives its observability: each container's memory (requested and
    limit), Prometheus's retention (days, bytes) and volume, Jaeger's traces kept."""
    found: dict[str, float] = {}
    for doc in of_kind(docs, *WORKLOADS):
        name = doc["metadata"]["name"]
        (container,) = containers(doc)
        for bound in ("requests", "limits"):
            found[f"{name} memory {bound}"] = quantity(container["resources"][bound]["memory"])
    (prometheus,) = containers(named(docs, "StatefulSet", "prometheus"))
    given = flags(prometheus)
    found["retention days"] = float(given["storage.tsdb.retention.time"].removesuffix("d"))
    found["retention bytes"] = quantity(given["storage.tsdb.retention.size"].replace("GB", "Gi"))
    (claim,) = named(docs, "StatefulSet", "prometheus")["spec"]["volumeClaimTemplates"]
    found["volume"] = quantity(claim["spec"]["resources"]["requests"]["storage"])
    (jaeger,) = containers(named(docs, "Deployment", "jaeger"))
    env = {variable["name"]: variable["value"] for variable in jaeger["env"]}
    found["traces"] = float(env["MEMORY_MAX_TRACES"])
    return found


def test_the_observability_of_staging_mirrors_prod_smaller_and_dev_smaller_still() -> None:
    """The same objects, images and options in every environment but the sizes: staging's
    below prod's, dev's not above staging's; Prometheus's retention within its volume."""
    dev, staging, prod = (monitoring(overlay) for overlay in MONITORING_OVERLAYS)

    def shape(docs: tuple[Doc, ...]) -> set[tuple[str, str, str]]:
        return {
            (doc["kind"], doc["metadata"]["name"], container["image"])
            for doc in of_kind(docs, *WORKLOADS)
            for container in containers(doc)
        } | {(doc["kind"], doc["metadata"]["name"], "") for doc in docs}

    assert shape(dev) == shape(staging) == shape(prod)
    retention = {"storage.tsdb.retention.time", "storage.tsdb.retention.size"}
    options = [flags(containers(named(docs, "StatefulSet", "prometheus"))[0]) for docs in (
        dev, staging, prod)]  # fmt: skip
    for ours in options:
        assert {key: value for key, value in ours.items() if key not in retention} == {
            key: value for key, value in options[2].items() if key not in retention
        }
    small, middle, large = sizes(dev), sizes(staging), sizes(prod)
    assert set(small) == set(middle) == set(large)
    for what in large:
        assert middle[what] < large[what], what
        assert small[what] <= middle[what], what
    assert large["retention days"] == 15  # compose's production keeps as long
    for found in (small, middle, large):
        assert found["retention bytes"] < found["volume"]
        for name in OBSERVABILITY:
            assert found[f"{name} memory requests"] <= found[f"{name} memory limits"], name


def test_the_observability_prometheus_scrapes_the_admin_ports_as_the_rules_jobs() -> None:
    """Prometheus keeps the platform pods' container port named http-admin, each pod's app
    label as its job and the edge's as haproxy (the SLO rules' name for it); every pod of the
    platform that serves its metrics there carries both."""
    config = yaml.safe_load(
        named(monitoring("prod"), "ConfigMap", "prometheus-config")["data"]["prometheus.yml"]
    )
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "mdp"]
    (discovery,) = job["kubernetes_sd_configs"]
    assert discovery == {"role": "pod", "namespaces": {"names": [NAMESPACE]}}
    relabel = job["relabel_configs"]
    assert relabel[0] == {
        "source_labels": ["__meta_kubernetes_pod_container_port_name"],
        "regex": "http-admin",
        "action": "keep",
    }
    assert {"source_labels": ["__meta_kubernetes_pod_label_app"], "target_label": "job"} in relabel
    renamed = {
        rule["regex"]: rule["replacement"] for rule in relabel
        if rule.get("target_label") == "job" and rule.get("source_labels") == ["job"]
    }  # fmt: skip
    assert renamed == {"edge": "haproxy", EXPORTER: "kafka"}
    for overlay in OVERLAYS:
        platform = rendered(overlay)
        scraped = {
            doc["metadata"]["name"]: port["containerPort"]
            for doc in of_kind(platform, "Deployment")
            for port in containers(doc)[0].get("ports", [])
            if re.fullmatch(relabel[0]["regex"], port.get("name", ""))
        }
        assert scraped == dict.fromkeys(DEPLOYMENTS, ADMIN_PORT), overlay
        for name in scraped:
            assert pod_labels(named(platform, "Deployment", name))["app"] == name


RULES = ROOT / "deploy" / "prometheus" / "rules"


@pytest.mark.parametrize("overlay", MONITORING_OVERLAYS)
def test_the_observability_prometheus_loads_the_rules_of_deploy_prometheus(overlay: str) -> None:
    """The ConfigMap of rules holds every file of deploy/prometheus/rules, unchanged and no
    other; Prometheus mounts it where its configuration's rule_files look."""
    docs = monitoring(overlay)
    statefulset = named(docs, "StatefulSet", "prometheus")
    volumes = {volume["name"]: volume for volume in pod_spec(statefulset)["volumes"]}
    (container,) = containers(statefulset)
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    by_name = {doc["metadata"]["name"]: doc for doc in of_kind(docs, "ConfigMap")}
    rules = by_name[volumes["rules"]["configMap"]["name"]]
    assert rules["metadata"]["name"].startswith("prometheus-rules-")  # kustomize's hash
    expected = {path.name: path.read_text() for path in sorted(RULES.glob("*.yml"))}
    assert expected
    assert rules["data"] == expected
    config = yaml.safe_load(by_name["prometheus-config"]["data"]["prometheus.yml"])
    assert config["rule_files"] == [f"{mounts['rules']}/*.yml"]
    configuration = mounts[next(name for name, volume in volumes.items() if volume.get(
        "configMap", {}).get("name") == "prometheus-config")]  # fmt: skip
    assert not mounts["rules"].startswith(f"{configuration}/")  # not inside a read-only volume


def test_the_observability_prometheus_probes_the_edges_health_through_the_blackbox_exporter() -> (
    None
):
    """The job blackbox asks the exporter's Service to probe the edge's public health URLs
    with a module the exporter has; each URL is its series' instance (EndpointDown's label),
    and the edge's NetworkPolicy admits the probe on that port."""
    docs = monitoring("prod")
    config = yaml.safe_load(named(docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "blackbox"]
    (module,) = job["params"]["module"]
    exporter = yaml.safe_load(named(docs, "ConfigMap", "blackbox-config")["data"]["config.yml"])
    assert module in exporter["modules"]
    relabel = job["relabel_configs"]
    assert {"source_labels": ["__param_target"], "target_label": "instance"} in relabel
    (address,) = [rule["replacement"] for rule in relabel if rule["target_label"] == "__address__"]
    host, port = address.split(":")
    (served,) = named(docs, "Service", host)["spec"]["ports"]
    assert served["port"] == int(port)
    (static,) = job["static_configs"]
    edge_port = next(
        p["port"] for p in named(rendered("prod"), "Service", "edge")["spec"]["ports"]
        if p["name"] == "http"
    )  # fmt: skip
    assert static["targets"] == [
        f"http://edge.{NAMESPACE}.svc.cluster.local:{edge_port}{path}"
        for path in ("/healthz", "/auth/healthz")
    ]
    edge_policy = named(rendered("prod"), "NetworkPolicy", "edge")
    assert any(
        "from" not in rule and {"protocol": "TCP", "port": edge_port} in rule["ports"]
        for rule in edge_policy["spec"]["ingress"]
    ), "the edge's public port is open to every client"


ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


@pytest.mark.parametrize("overlay", MONITORING_OVERLAYS)
def test_the_observability_prometheus_alerts_through_alertmanager_configured_as_compose(
    overlay: str,
) -> None:
    """Prometheus sends its alerts to the Service alertmanager on its port; the Alertmanager
    pod mounts the ConfigMap made from deploy/alertmanager/alertmanager.yml, unchanged, where
    its --config.file looks."""
    docs = monitoring(overlay)
    config = yaml.safe_load(named(docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    (manager,) = config["alerting"]["alertmanagers"]
    (target,) = [t for static in manager["static_configs"] for t in static["targets"]]
    host, port = target.split(":")
    service = named(docs, "Service", host)
    (served,) = service["spec"]["ports"]
    assert served["port"] == int(port)
    deployment = named(docs, "Deployment", "alertmanager")
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))
    (container,) = containers(deployment)
    assert served["targetPort"] in {p["name"] for p in container["ports"]}
    volumes = {volume["name"]: volume for volume in pod_spec(deployment)["volumes"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    (config_volume,) = [n for n, v in volumes.items() if "configMap" in v]
    made = named(docs, "ConfigMap", volumes[config_volume]["configMap"]["name"])
    assert made["metadata"]["name"].startswith("alertmanager-config-")  # kustomize's hash
    assert made["data"] == {"alertmanager.yml": ALERTMANAGER.read_text()}
    assert flags(container)["config.file"] == f"{mounts[config_volume]}/alertmanager.yml"


def test_promtool_accepts_the_observability_prometheus_with_its_rules(tmp_path: Path) -> None:
    """The configuration and the rules as the pod mounts them (the rules' folder moved to a
    temporary one): ``promtool check config`` reads both and finds every rule file. Debian's
    promtool is built without Kubernetes discovery, so the job's pods are one static target
    here; its relabelling and everything else are checked as written."""
    docs = monitoring("prod")
    statefulset = named(docs, "StatefulSet", "prometheus")
    volumes = {volume["name"]: volume for volume in pod_spec(statefulset)["volumes"]}
    (container,) = containers(statefulset)
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    rules = named(docs, "ConfigMap", volumes["rules"]["configMap"]["name"])["data"]
    (tmp_path / "rules").mkdir()
    for name, text in rules.items():
        (tmp_path / "rules" / name).write_text(text)
    config = yaml.safe_load(named(docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    config["rule_files"] = [
        pattern.replace(mounts["rules"], str(tmp_path / "rules"))
        for pattern in config["rule_files"]
    ]
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None):
            job["static_configs"] = [{"targets": [f"pod:{ADMIN_PORT}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = run_promtool("check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rule files found" in done.stdout


def test_the_services_send_their_spans_to_the_collector_in_monitoring() -> None:
    """Every service's environment names the collector's OTLP/HTTP Service in the namespace
    monitoring (the default of --otlp-endpoint), and may reach the collector's pods there."""
    collector = monitoring("prod")
    service = named(collector, "Service", "otel-collector")
    (port,) = [entry for entry in service["spec"]["ports"] if entry["name"] == "http-otlp"]
    receiver = yaml.safe_load(
        named(collector, "ConfigMap", "otel-collector-config")["data"]["config.yml"]
    )["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    deployment = named(collector, "Deployment", "otel-collector")
    (served,) = [entry["containerPort"] for entry in containers(deployment)[0]["ports"]
                 if entry["name"] == port["targetPort"]]  # fmt: skip
    assert receiver == f"0.0.0.0:{served}"
    pods_labels = pod_labels(deployment)
    endpoint = f"http://otel-collector.monitoring.svc.cluster.local:{port['port']}"
    for overlay in OVERLAYS:
        docs = rendered(overlay)
        environment = named(docs, "ConfigMap", "mdp-env")["data"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint, overlay
        for doc in of_kind(docs, "Deployment"):
            if doc["metadata"]["name"] == EXPORTER:
                continue  # it sends no spans
            assert {"configMapRef": {"name": "mdp-env"}} in containers(doc)[0]["envFrom"]
            assert any(
                monitoring_peer(peer) and selects(peer.get("podSelector", {}), pods_labels)
                and on_port(rule, port["port"])
                for policy in policies(docs)
                if selects(policy["spec"]["podSelector"], pod_labels(doc))
                for rule in policy["spec"].get("egress", [])
                for peer in rule.get("to", [])
            ), (overlay, doc["metadata"]["name"])  # fmt: skip
