"""What deploy/k8s/monitoring adds beside Prometheus, checked rendered (as tests/deploy/test_k8s.py
renders the overlays, with its helpers): Grafana provisioned from the repository's own files,
the NetworkPolicies of the namespace monitoring, the Kafka exporter beside the brokers in the
namespace mdp, scraped as compose's job kafka, and the Prometheus adapter serving every metric
the autoscalers name.

Every check reads both sides from the rendered objects or from the files compose mounts: a
port, a selector or a name changed on one side alone fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_k8s import (
    ADMIN_PORT,
    DEPLOYMENTS,
    EXPORTER,
    EXTERNAL,
    MONITORING_OVERLAYS,
    NAMESPACE,
    OVERLAYS,
    ROOT,
    Doc,
    containers,
    flags,
    monitoring,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    rendered,
    selects,
)

GRAFANA = ROOT / "deploy" / "grafana"
COMPOSE = ROOT / "compose"
RULES = ROOT / "deploy" / "prometheus" / "rules"
MONITORING_NAMESPACE = "monitoring"
OUTSIDE = "outside"
"""A client that is no pod of the cluster: an operator's connection, the API server."""


def compose_service(name: str) -> Doc:
    services: Doc = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]
    service: Doc = services[name]
    return service


def workload(docs: tuple[Doc, ...], name: str) -> Doc:
    (found,) = [doc for doc in of_kind(docs, "Deployment", "StatefulSet") if doc["metadata"][
        "name"] == name]  # fmt: skip
    return found


def mounted_config_maps(docs: tuple[Doc, ...], name: str) -> dict[str, Doc]:
    """The ConfigMaps a workload's container mounts, by mount path."""
    doc = workload(docs, name)
    volumes = {volume["name"]: volume for volume in pod_spec(doc)["volumes"]}
    (container,) = containers(doc)
    return {
        mount["mountPath"]: named(docs, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
        for mount in container["volumeMounts"]
        if "configMap" in volumes[mount["name"]]
    }


def service_at(docs: tuple[Doc, ...], url: str) -> tuple[Doc, int]:
    """The Service of the namespace monitoring that a URL of the namespace names
    (``http://NAME:PORT/...``), and the container port it sends to."""
    found = re.fullmatch(r"(?:https?://)?([a-z0-9-]+):(\d+)(?:/.*)?", url)
    assert found, url
    service = named(docs, "Service", found.group(1))
    (entry,) = [p for p in service["spec"]["ports"] if p["port"] == int(found.group(2))]
    return service, container_port(docs, service, entry)


def container_port(docs: tuple[Doc, ...], service: Doc, entry: Doc) -> int:
    """The container port a Service's port entry reaches on the pods it selects."""
    target = entry.get("targetPort", entry["port"])
    (pod,) = [doc for doc in of_kind(docs, "Deployment", "StatefulSet") if selects(
        {"matchLabels": service["spec"]["selector"]}, pod_labels(doc))]  # fmt: skip
    if isinstance(target, int):
        return target
    (port,) = [p["containerPort"] for p in containers(pod)[0]["ports"] if p["name"] == target]
    return int(port)


# -- Grafana: its provisioning, the repository's files ---------------------------------------------


def compose_mounts(service: str) -> dict[Path, str]:
    """Compose's bind mounts of a service: the repository's file or folder, and where the
    container sees it."""
    mounts = {}
    for volume in compose_service(service)["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[(COMPOSE / source).resolve()] = target
    return mounts


@pytest.mark.parametrize("overlay", MONITORING_OVERLAYS)
def test_grafana_sees_the_files_compose_mounts_where_compose_mounts_them(overlay: str) -> None:
    """Every file of the folders compose mounts into Grafana (its provisioning, the
    dashboards) is, byte for byte, in the ConfigMap mounted at the same path in the pod, and
    those ConfigMaps hold nothing else; kustomize made them from the files (their names carry
    its hash), so they are not copies that could drift."""
    docs = monitoring(overlay)
    config_maps = mounted_config_maps(docs, "grafana")
    expected: dict[str, dict[str, str]] = {}
    for source, target in compose_mounts("grafana").items():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                seen = f"{target}/{path.relative_to(source)}"
                folder, file = seen.rsplit("/", 1)
                expected.setdefault(folder, {})[file] = path.read_text()
    assert set(expected) >= {
        "/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards",
        "/var/lib/grafana/dashboards",
    }  # fmt: skip
    assert {path: made["data"] for path, made in config_maps.items()} == expected
    for made in config_maps.values():
        assert re.fullmatch(r"grafana-[a-z-]+-[a-z0-9]{10}", made["metadata"]["name"])
    dashboards = config_maps["/var/lib/grafana/dashboards"]["data"]
    assert sorted(dashboards) == sorted(p.name for p in (GRAFANA / "dashboards").glob("*.json"))


APPLY_ANNOTATION_LIMIT = 262_144
"""Bytes of the annotation in which a client-side ``kubectl apply`` keeps the whole object."""


def test_every_configmap_fits_a_client_side_apply_with_room_to_grow() -> None:
    """``kubectl apply -k`` (client side, as docs/deploy.md says to run it) keeps each object
    in an annotation of at most 256 KiB: the dashboards' ConfigMap is the largest, and a few
    more dashboards must not make the documented apply fail."""
    for doc in of_kind(monitoring("prod"), "ConfigMap"):
        size = len(json.dumps(doc, separators=(",", ":")).encode())
        assert size < 0.8 * APPLY_ANNOTATION_LIMIT, (
            f"{doc['metadata']['name']}: {size:,} bytes; split it or apply server-side"
        )


@pytest.mark.parametrize("overlay", MONITORING_OVERLAYS)
def test_grafanas_provisioning_names_what_runs_in_the_namespace(overlay: str) -> None:
    """The data source's URL is the Prometheus Service of the namespace on the port it
    serves; the dashboard provider reads the folder the dashboards are mounted at; every
    panel of every dashboard names the provisioned data source's uid."""
    docs = monitoring(overlay)
    config_maps = mounted_config_maps(docs, "grafana")
    (sources,) = config_maps["/etc/grafana/provisioning/datasources"]["data"].values()
    (source,) = yaml.safe_load(sources)["datasources"]
    service, port = service_at(docs, source["url"])
    assert service["metadata"]["name"] == "prometheus"
    (prometheus,) = containers(workload(docs, "prometheus"))
    assert port in {p["containerPort"] for p in prometheus["ports"]}
    (providers,) = config_maps["/etc/grafana/provisioning/dashboards"]["data"].values()
    (provider,) = yaml.safe_load(providers)["providers"]
    dashboards = config_maps[provider["options"]["path"]]["data"]
    assert dashboards
    for name, text in dashboards.items():
        uids = set(re.findall(r'"datasource":\s*\{[^}]*"uid":\s*"([^"]+)"', text))
        assert uids == {source["uid"]}, name


# -- the NetworkPolicies of the namespace monitoring ----------------------------------------------


def peer_admits(peer: Doc, policy_namespace: str, namespace: str, labels: dict[str, str]) -> bool:
    """One entry of a rule's ``from`` against a pod (its namespace and labels); ``outside``
    (namespace "") is no pod: only an ipBlock could name it, and none here does."""
    if not namespace or "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}):
            return False
    elif namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), labels)


def ingress_allowed(
    policies: list[Doc], target: dict[str, str], namespace: str, labels: dict[str, str], port: int
) -> bool:
    """The ingress policies of the target's namespace let a client (its namespace and pod
    labels, or ``outside``) open ``port`` on a pod with the ``target`` labels."""
    mine = [p for p in policies if "Ingress" in p["spec"]["policyTypes"] and selects(
        p["spec"]["podSelector"], target)]  # fmt: skip
    if not mine:
        return True
    return any(
        ("from" not in rule or any(
            peer_admits(peer, policy["metadata"]["namespace"], namespace, labels)
            for peer in rule["from"]))
        and any(entry.get("port") in (None, port) for entry in rule.get("ports", [{}]))
        for policy in mine
        for rule in policy["spec"].get("ingress", [])
    )  # fmt: skip


def clients(docs: tuple[Doc, ...], platform: tuple[Doc, ...]) -> dict[str, tuple[str, Doc]]:
    """Who may knock: every workload of monitoring, every Deployment of the platform (as
    ``mdp/NAME``), and a client from outside the cluster's pods."""
    found = {
        doc["metadata"]["name"]: (MONITORING_NAMESPACE, pod_labels(doc))
        for doc in of_kind(docs, "Deployment", "StatefulSet")
    }
    for doc in of_kind(platform, "Deployment"):
        found[f"{NAMESPACE}/{doc['metadata']['name']}"] = (NAMESPACE, pod_labels(doc))
    found[OUTSIDE] = ("", {})
    return found


INTERNAL_FLOWS = {
    ("grafana", "prometheus", 9090), ("prometheus-adapter", "prometheus", 9090),
    ("prometheus", "alertmanager", 9093), ("prometheus", "blackbox-exporter", 9115),
    ("otel-collector", "jaeger", 4317), ("grafana", "jaeger", 16686),
}  # fmt: skip
"""The flows inside monitoring (docs/deploy.md, "Observability"); beside them, the platform's
services to the collector's OTLP port, and anyone to Grafana (the operators) and to the
adapter (the API server)."""


@pytest.mark.parametrize("overlay", MONITORING_OVERLAYS)
def test_the_monitoring_namespace_lets_in_exactly_the_flows_it_needs(overlay: str) -> None:
    docs, platform = monitoring(overlay), rendered("prod")
    policies = of_kind(docs, "NetworkPolicy")
    deny = named(docs, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    knocking = clients(docs, platform)
    flows = {
        (source, target["metadata"]["name"], port["containerPort"])
        for source, (namespace, labels) in knocking.items()
        for target in of_kind(docs, "Deployment", "StatefulSet")
        for port in containers(target)[0]["ports"]
        if ingress_allowed(policies, pod_labels(target), namespace, labels, port["containerPort"])
    }
    platform_services = {name for name in knocking if name.startswith(f"{NAMESPACE}/")}
    expected = (
        INTERNAL_FLOWS
        | {(source, "otel-collector", 4318) for source in platform_services}
        | {(source, "grafana", 3000) for source in knocking}
        | {(source, "prometheus-adapter", 6443) for source in knocking}
    )
    assert flows == expected


@pytest.mark.parametrize("overlay", MONITORING_OVERLAYS)
def test_every_connection_the_configuration_names_is_let_in(overlay: str) -> None:
    """Each address a component is configured with, resolved to the Service, its pods and
    the container port: the policies let the configured client in. So a port renamed or a
    Service moved on one side fails here."""
    docs, platform = monitoring(overlay), rendered("prod")
    policies = of_kind(docs, "NetworkPolicy")
    prometheus_yml = yaml.safe_load(
        named(docs, "ConfigMap", "prometheus-config")["data"]["prometheus.yml"]
    )
    (manager,) = prometheus_yml["alerting"]["alertmanagers"]
    (blackbox,) = [job for job in prometheus_yml["scrape_configs"] if job["job_name"] == "blackbox"]
    collector = yaml.safe_load(named(docs, "ConfigMap", "otel-collector-config")["data"][
        "config.yml"])  # fmt: skip
    (sources,) = mounted_config_maps(docs, "grafana")[
        "/etc/grafana/provisioning/datasources"]["data"].values()  # fmt: skip
    adapter = flags(containers(workload(docs, "prometheus-adapter"))[0])
    otlp = named(platform, "ConfigMap", "mdp-env")["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    named_by: list[tuple[str, str]] = [
        ("prometheus", manager["static_configs"][0]["targets"][0]),
        (
            "prometheus",
            next(
                r["replacement"]
                for r in blackbox["relabel_configs"]
                if r["target_label"] == "__address__"
            ),
        ),
        ("otel-collector", collector["exporters"]["otlp/jaeger"]["endpoint"]),
        ("grafana", yaml.safe_load(sources)["datasources"][0]["url"]),
        ("prometheus-adapter", adapter["prometheus-url"]),
        (f"{NAMESPACE}/gateway", otlp.replace(f".{MONITORING_NAMESPACE}.svc.cluster.local", "")),
    ]
    knocking = clients(docs, platform)
    for client, url in named_by:
        service, port = service_at(docs, url)
        namespace, labels = knocking[client]
        assert ingress_allowed(policies, service["spec"]["selector"], namespace, labels, port), (
            client, url)  # fmt: skip


# -- the Kafka exporter, in the namespace mdp ------------------------------------------------------


def relabelled(labels: dict[str, str], rules: list[Doc]) -> dict[str, str] | None:
    """Prometheus's relabelling (replace and keep, its defaults) of a target's labels; None
    when a keep drops it."""
    labels = dict(labels)
    for rule in rules:
        value = rule.get("separator", ";").join(labels.get(n, "") for n in rule.get(
            "source_labels", []))  # fmt: skip
        found = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if not found:
                return None
        elif action == "replace":
            if found:
                replacement = re.sub(r"\$\{?(\d+)\}?", r"\\\1", rule.get("replacement", "$1"))
                labels[rule["target_label"]] = found.expand(replacement)
        else:
            pytest.fail(f"relabel action {action} not modelled here")
    return labels


def discovered(doc: Doc, port: Doc) -> dict[str, str]:
    """The meta labels Kubernetes discovery (role pod) gives one container port of a pod."""
    labels = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_name": f"{doc['metadata']['name']}-0",
        "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
        "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
        "__address__": f"10.0.0.1:{port['containerPort']}",
    }
    for key, value in pod_labels(doc).items():
        labels["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return labels


def scraped(platform: tuple[Doc, ...]) -> dict[str, dict[str, str]]:
    """The targets the job mdp keeps among the platform's pods, with their labels."""
    config = yaml.safe_load(named(monitoring("prod"), "ConfigMap", "prometheus-config")["data"][
        "prometheus.yml"])  # fmt: skip
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "mdp"]
    found = {}
    for doc in of_kind(platform, "Deployment"):
        for port in containers(doc)[0].get("ports", []):
            labels = relabelled({**discovered(doc, port), "job": "mdp"}, job["relabel_configs"])
            if labels is not None:
                found[doc["metadata"]["name"]] = labels
    return found


def compose_job_of(host: str) -> str:
    config = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job["job_name"] for job in config["scrape_configs"]
              for static in job.get("static_configs", [])
              if any(target.split(":")[0] == host for target in static["targets"])]  # fmt: skip
    return str(job)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kafka_exporter_is_scraped_as_composes_job_kafka_that_the_alerts_read(
    overlay: str,
) -> None:
    """Prometheus keeps the exporter's admin port and names its job as compose's (kafka), the
    job the alert KafkaUnavailable reads, beside the series the Kafka alerts read; the
    exporter is compose's image."""
    platform = rendered(overlay)
    targets = scraped(platform)
    assert set(targets) == DEPLOYMENTS
    exporter = targets[EXPORTER]
    assert exporter["job"] == compose_job_of("kafka-exporter") == "kafka"
    assert exporter["__address__"].endswith(f":{ADMIN_PORT}")
    assert exporter["namespace"] == NAMESPACE  # the autoscalers' namespace (the adapter's rule)
    assert targets["edge"]["job"] == "haproxy"
    rules = "\n".join(path.read_text() for path in sorted(RULES.glob("*.yml")))
    assert f'up{{job="{exporter["job"]}"}}' in rules
    for series in ("kafka_consumergroup_lag", "kafka_broker_info",
                   "kafka_topic_partition_current_offset"):  # fmt: skip
        assert series in rules, series
    (container,) = containers(named(platform, "Deployment", EXPORTER))
    assert container["image"] == compose_service("kafka-exporter")["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kafka_exporter_reaches_the_brokers_and_is_reached_as_the_admin_ports_are(
    overlay: str,
) -> None:
    """Past the namespace's policies as every service's admin port: the NetworkPolicy lets
    monitoring in on 9464, the PeerAuthentication takes plain scrapes there, a Service binds
    it, the AuthorizationPolicy lets GET /metrics through; and its own egress reaches the
    brokers (the StatefulSet's pods, or the managed brokers' network), on 9092 alone."""
    docs = rendered(overlay)
    exporter = named(docs, "Deployment", EXPORTER)
    labels = pod_labels(exporter)
    policies = of_kind(docs, "NetworkPolicy")
    prometheus = {"app": "prometheus"}
    assert ingress_allowed(policies, labels, MONITORING_NAMESPACE, prometheus, ADMIN_PORT)
    assert not ingress_allowed(policies, labels, NAMESPACE, {"app": "api"}, ADMIN_PORT)
    (peer,) = [p for p in of_kind(docs, "PeerAuthentication") if "selector" in p["spec"]
               and selects(p["spec"]["selector"], labels)]  # fmt: skip
    assert peer["spec"]["portLevelMtls"] == {str(ADMIN_PORT): {"mode": "PERMISSIVE"}}
    assert any(
        selects({"matchLabels": service["spec"].get("selector", {"": "none"})}, labels)
        and any(entry["port"] == ADMIN_PORT for entry in service["spec"]["ports"])
        for service in of_kind(docs, "Service")
    )  # fmt: skip
    admin = named(docs, "AuthorizationPolicy", "admin-port")["spec"]
    (operation,) = [to["operation"] for rule in admin["rules"] for to in rule["to"]]
    assert str(ADMIN_PORT) in operation["ports"]
    assert "/metrics" in operation["paths"]
    assert "GET" in operation["methods"]
    egress = [
        (peer, rule["ports"]) for policy in policies
        if "Egress" in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], labels)
        for rule in policy["spec"].get("egress", []) for peer in rule.get("to", [])
    ]  # fmt: skip
    if overlay in EXTERNAL:
        brokers = [peer for peer, _ in egress if "ipBlock" in peer]
        assert brokers == named(docs, "NetworkPolicy", "kafka-clients")["spec"]["egress"][0]["to"]
    else:
        kafka = pod_labels(named(docs, "StatefulSet", "kafka"))
        assert any(selects(peer.get("podSelector", {"": "none"}), kafka) for peer, _ in egress)
        assert ingress_allowed(policies, kafka, NAMESPACE, labels, 9092)
    assert {port["port"] for _, ports in egress for port in ports} <= {9092, 53, 15012}


# -- the Prometheus adapter ------------------------------------------------------------------------


def adapter_config(docs: tuple[Doc, ...]) -> Doc:
    (made,) = [
        made for path, made in mounted_config_maps(docs, "prometheus-adapter").items()
        if flags(containers(workload(docs, "prometheus-adapter"))[0])["config"].startswith(path)
    ]  # fmt: skip
    (text,) = made["data"].values()
    config: Doc = yaml.safe_load(text)
    return config


def series_name(rule: Doc) -> str:
    found = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", rule["seriesQuery"])
    assert found, rule["seriesQuery"]
    return found.group(1)


def grouped_by(rule: Doc) -> set[str]:
    found = re.search(r"\bby \(([^)]*)\)", rule["metricsQuery"])
    assert found, rule["metricsQuery"]
    return {label.strip() for label in found.group(1).split(",")}


def overridden(rule: Doc) -> dict[str, str]:
    overrides: dict[str, Doc] = rule.get("resources", {}).get("overrides", {})
    return {label: target["resource"] for label, target in overrides.items()}


@pytest.mark.parametrize("overlay", ["staging", "prod"])
def test_every_metric_an_autoscaler_names_has_its_adapter_rule(overlay: str) -> None:
    """External metrics: an external rule on that series, summed by every label the
    autoscaler selects, its namespace label mapped (the exporter's series carry the
    autoscalers' namespace); Pods metrics: a rule on that series mapping the namespace and
    pod labels Prometheus gives each target, so each pod's value is its own."""
    docs = rendered(overlay)
    config = adapter_config(monitoring(overlay))
    external = {series_name(rule): rule for rule in config.get("externalRules", [])}
    custom = {series_name(rule): rule for rule in config.get("rules", [])}
    targets = scraped(docs)
    asked = set()
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        for metric in hpa["spec"]["metrics"]:
            kind = metric["type"]
            if kind == "External":
                wanted = metric["external"]["metric"]
                rule = external[wanted["name"]]
                assert set(wanted["selector"]["matchLabels"]) <= grouped_by(rule)
                assert overridden(rule) == {"namespace": "namespace"}
                assert targets[EXPORTER]["namespace"] == hpa["metadata"].get("namespace", NAMESPACE)
            elif kind == "Pods":
                wanted = metric["pods"]["metric"]
                rule = custom[wanted["name"]]
                assert overridden(rule) == {"namespace": "namespace", "pod": "pod"}
                scaled = targets[hpa["spec"]["scaleTargetRef"]["name"]]
                assert {"namespace", "pod"} <= set(scaled)
            else:
                assert kind == "Resource", kind
                continue
            assert "name" not in rule  # the series' own name is the metric's
            asked.add(wanted["name"])
    assert asked == set(external) | set(custom)  # and no rule serves nobody


def test_the_adapters_rules_are_the_ones_docs_deploy_shows() -> None:
    """docs/deploy.md ("Autoscaling metrics") shows the rules an operator reads; they are
    the ConfigMap's."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## Autoscaling metrics", 1)[1].split("\n## ", 1)[0]
    shown: Doc = {}
    for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL):
        shown.update(yaml.safe_load(block))
    assert shown == adapter_config(monitoring("prod"))


def test_the_adapter_serves_the_metrics_apis_to_the_autoscalers() -> None:
    """The two APIServices name the adapter's Service, namespace and port, which reaches its
    --secure-port; it asks the Prometheus Service where Prometheus listens; the controller's
    autoscalers may read both groups; the adapter may delegate authentication and
    authorization and read the front-proxy CA."""
    docs = monitoring("prod")
    deployment = workload(docs, "prometheus-adapter")
    (container,) = containers(deployment)
    given = flags(container)
    groups = set()
    for api in of_kind(docs, "APIService"):
        spec = api["spec"]
        assert api["metadata"]["name"] == f"{spec['version']}.{spec['group']}"
        assert spec["service"]["namespace"] == MONITORING_NAMESPACE
        service = named(docs, "Service", spec["service"]["name"])
        (entry,) = [p for p in service["spec"]["ports"] if p["port"] == spec["service"]["port"]]
        assert container_port(docs, service, entry) == int(given["secure-port"])
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))
        groups.add(spec["group"])
    assert groups == {"custom.metrics.k8s.io", "external.metrics.k8s.io"}
    service, port = service_at(docs, given["prometheus-url"])
    assert service["metadata"]["name"] == "prometheus"
    assert port in {p["containerPort"] for p in containers(workload(docs, "prometheus"))[0][
        "ports"]}  # fmt: skip

    def granted(account: str, namespace: str) -> list[tuple[str, Doc]]:
        """The roles bound to a service account: (binding's namespace or "", roleRef)."""
        return [
            (binding["metadata"].get("namespace", ""), binding["roleRef"])
            for binding in of_kind(docs, "ClusterRoleBinding", "RoleBinding")
            if {"kind": "ServiceAccount", "name": account, "namespace": namespace}
            in binding["subjects"]
        ]  # fmt: skip

    hpa = granted("horizontal-pod-autoscaler", "kube-system")
    readable = {
        group
        for _, ref in hpa if ref["kind"] == "ClusterRole"
        for rule in named(docs, "ClusterRole", ref["name"])["rules"]
        if {"get", "list"} <= set(rule["verbs"]) and rule["resources"] == ["*"]
        for group in rule["apiGroups"]
    }  # fmt: skip
    assert readable >= groups
    account = pod_spec(deployment)["serviceAccountName"]
    assert pod_spec(deployment).get("automountServiceAccountToken", True)
    roles = {(where, ref["kind"], ref["name"]) for where, ref in granted(
        account, MONITORING_NAMESPACE)}  # fmt: skip
    assert ("", "ClusterRole", "system:auth-delegator") in roles
    assert ("kube-system", "Role", "extension-apiserver-authentication-reader") in roles


def test_the_adapter_and_the_exporter_run_once_in_every_environment() -> None:
    """One of each: two adapters would serve the same answers (one is enough while the
    autoscalers keep their replicas when it is away); two exporters would double the lag."""
    for overlay in MONITORING_OVERLAYS:
        assert workload(monitoring(overlay), "prometheus-adapter")["spec"]["replicas"] == 1
    for overlay in OVERLAYS:
        exporter = named(rendered(overlay), "Deployment", EXPORTER)
        assert exporter["spec"]["replicas"] == 1, overlay
        assert exporter["spec"]["strategy"]["type"] == "Recreate", overlay
