"""Tests of tools/gen_manifests.py: settings checks, drift of the committed
output, and the semantic rules that no schema checks (selectors, peer
addresses, ports, majority). Schema validation is in test_manifests_schema.py.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
GENERATOR_PATH = REPO_ROOT / "tools" / "gen_manifests.py"
COMMITTED_DIR = REPO_ROOT / "deploy"
GENERATED_DIRS = ("compose", "k8s")
# Files in the generated folders that the generator does not write.
UNGENERATED_FILES = {"compose/.gitignore", "compose/cluster.key"}


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_manifests", GENERATOR_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_manifests"] = module
    spec.loader.exec_module(module)
    return module


gen = load_generator()


def render_documents(**settings: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Render settings and return the Kubernetes documents and the Compose file."""
    files = gen.render(gen.Settings(**settings))
    documents: list[dict[str, Any]] = []
    for name in sorted(files):
        if name.startswith("k8s/"):
            documents.extend(doc for doc in yaml.safe_load_all(files[name]) if doc)
    compose = yaml.safe_load(files["compose/docker-compose.yml"])
    return documents, compose


# Semantic checks. Each returns a list of problems, and an empty list passes.


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Apply a Kubernetes label selector (matchLabels and matchExpressions) to labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def of_kind(documents: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def workloads(documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] in ("StatefulSet", "Job")]


def pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def containers(workload: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(workload["spec"]["template"]["spec"]["containers"])


def container_ports(workload: Mapping[str, Any]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for container in containers(workload):
        for port in container.get("ports", []):
            ports[port["name"]] = port["containerPort"]
    return ports


def selected_workloads(
    documents: list[dict[str, Any]], namespace: str, selector: Mapping[str, Any]
) -> list[str]:
    return sorted(
        workload["metadata"]["name"]
        for workload in workloads(documents)
        if workload["metadata"]["namespace"] == namespace
        and selector_matches(selector, pod_labels(workload))
    )


def check_selectors(documents: list[dict[str, Any]]) -> list[str]:
    """Check that every selector selects exactly the pods it is meant for."""
    problems = []
    for statefulset in of_kind(documents, "StatefulSet"):
        name = statefulset["metadata"]["name"]
        if not selector_matches(statefulset["spec"]["selector"], pod_labels(statefulset)):
            problems.append(f"StatefulSet {name}: selector does not match its pod labels")

    # Service, PodDisruptionBudget and NetworkPolicy share the name of the
    # StatefulSet whose pods they target, and must select those pods only.
    targeted = [
        (doc, doc["spec"].get("selector"))
        for doc in of_kind(documents, "Service") + of_kind(documents, "PodDisruptionBudget")
    ]
    targeted += [(doc, doc["spec"]["podSelector"]) for doc in of_kind(documents, "NetworkPolicy")]
    for doc, selector in targeted:
        label = f"{doc['kind']} {doc['metadata']['name']}"
        if selector is None:
            problems.append(f"{label}: no selector")
            continue
        if doc["kind"] == "Service":
            selector = {"matchLabels": selector}
        selected = selected_workloads(documents, doc["metadata"]["namespace"], selector)
        if selected != [doc["metadata"]["name"]]:
            problems.append(f"{label}: selects {selected}, expected [{doc['metadata']['name']!r}]")

    for policy in of_kind(documents, "NetworkPolicy"):
        for rule in policy["spec"]["ingress"]:
            for source in rule.get("from", []):
                selected = selected_workloads(
                    documents, policy["metadata"]["namespace"], source["podSelector"]
                )
                if selected != ["store", "sync"]:
                    problems.append(
                        f"NetworkPolicy {policy['metadata']['name']}: cluster port open to "
                        f"{selected}, expected the sync and store pods only"
                    )
    return problems


def parse_node_list(value: str) -> list[tuple[str, int, int]]:
    entries = []
    for entry in value.split(","):
        host, port, cluster_port = entry.split(":")
        entries.append((host, int(port), int(cluster_port)))
    return entries


def check_peer_addresses(documents: list[dict[str, Any]]) -> list[str]:
    """Check that SYNC_NODES and STORE_NODES list every StatefulSet pod, in id order."""
    problems = []
    (config,) = of_kind(documents, "ConfigMap")
    namespace = config["metadata"]["namespace"]
    services = {doc["metadata"]["name"]: doc for doc in of_kind(documents, "Service")}
    statefulsets = {doc["metadata"]["name"]: doc for doc in of_kind(documents, "StatefulSet")}

    for variable, role in (("SYNC_NODES", "sync"), ("STORE_NODES", "store")):
        entries = parse_node_list(config["data"][variable])
        statefulset = statefulsets[role]
        replicas = statefulset["spec"]["replicas"]
        if len(entries) != replicas:
            problems.append(f"{variable}: {len(entries)} entries for {replicas} replicas")

        for index, (host, port, cluster_port) in enumerate(entries):
            parts = host.split(".")
            if len(parts) != 3:
                problems.append(f"{variable}: {host} is not in hostname.service.namespace form")
                continue
            pod, service_name, host_namespace = parts
            service = services.get(service_name)
            if host_namespace != namespace or service is None:
                problems.append(f"{variable}: {host} names no Service in {namespace}")
                continue
            if service["spec"].get("clusterIP") != "None":
                problems.append(f"{variable}: Service {service_name} is not headless")

            owners = [s for s in statefulsets.values() if s["spec"]["serviceName"] == service_name]
            pod_names = {
                f"{owner['metadata']['name']}-{ordinal}"
                for owner in owners
                for ordinal in range(owner["spec"]["replicas"])
            }
            if pod not in pod_names:
                problems.append(f"{variable}: {host} names no StatefulSet pod")
            if pod != f"{role}-{index}":
                problems.append(f"{variable}: entry {index + 1} is {pod}, expected {role}-{index}")

            ports = container_ports(statefulset)
            if (port, cluster_port) != (ports.get("client"), ports.get("cluster")):
                problems.append(f"{variable}: {host} ports {port}:{cluster_port} != {ports}")
    return problems


def check_ports(documents: list[dict[str, Any]]) -> list[str]:
    """Check that containers, env, probes, Services and NetworkPolicies agree on ports."""
    problems = []
    statefulsets = {doc["metadata"]["name"]: doc for doc in of_kind(documents, "StatefulSet")}
    for name, statefulset in statefulsets.items():
        ports = container_ports(statefulset)
        for container in containers(statefulset):
            env = {item["name"]: item.get("value") for item in container.get("env", [])}
            if env.get("PORT") != str(ports.get("client")):
                problems.append(f"StatefulSet {name}: PORT {env.get('PORT')} != {ports}")
            if env.get("CLUSTER_PORT") != str(ports.get("cluster")):
                problems.append(f"StatefulSet {name}: CLUSTER_PORT {env.get('CLUSTER_PORT')}")
            for probe in ("readinessProbe", "livenessProbe"):
                command = container[probe]["exec"]["command"]
                if command[-2:] != ["--port", str(ports.get("client"))]:
                    problems.append(f"StatefulSet {name}: {probe} checks {command}")

    for service in of_kind(documents, "Service"):
        ports = container_ports(statefulsets[service["metadata"]["name"]])
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            if ports.get(target) != port["port"]:
                problems.append(
                    f"Service {service['metadata']['name']}: port {port['port']} -> {target}, "
                    f"container ports {ports}"
                )

    for policy in of_kind(documents, "NetworkPolicy"):
        ports = container_ports(statefulsets[policy["metadata"]["name"]])
        for rule in policy["spec"]["ingress"]:
            for port in rule.get("ports", []):
                if port["port"] not in ports:
                    problems.append(
                        f"NetworkPolicy {policy['metadata']['name']}: port {port['port']} "
                        f"is no container port of {sorted(ports)}"
                    )
    return problems


def check_majority(documents: list[dict[str, Any]]) -> list[str]:
    """Check that the PodDisruptionBudget keeps a majority of the sync nodes."""
    problems = []
    replicas = {doc["metadata"]["name"]: doc["spec"]["replicas"] for doc in workloads(documents)
                if doc["kind"] == "StatefulSet"}
    budgets = of_kind(documents, "PodDisruptionBudget")
    if [budget["metadata"]["name"] for budget in budgets] != ["sync"]:
        problems.append(f"expected one PodDisruptionBudget for sync, found {len(budgets)}")
    for budget in budgets:
        majority = replicas[budget["metadata"]["name"]] // 2 + 1
        if budget["spec"].get("minAvailable") != majority:
            problems.append(f"PodDisruptionBudget: minAvailable is not a majority ({majority})")
    return problems


def check_compose(compose: dict[str, Any], sync: int, store: int, clients: int) -> list[str]:
    """Check service names, IDs, peer lists, health dependencies and restart policies."""
    problems = []
    services = compose["services"]
    nodes = {
        "sync": [f"cluster_sync_{i}" for i in range(1, sync + 1)],
        "store": [f"cluster_store_{i}" for i in range(1, store + 1)],
    }
    client_names = [f"client_{i}" for i in range(1, clients + 1)]
    expected = nodes["sync"] + nodes["store"] + client_names
    if sorted(services) != sorted(expected):
        problems.append(f"services {sorted(services)} != {sorted(expected)}")
        return problems

    for name in expected:
        environment = services[name]["environment"]
        node_id = name.rsplit("_", 1)[1]
        if environment["ID"] != node_id:
            problems.append(f"{name}: ID {environment['ID']} != {node_id}")

    for variable, role in (("SYNC_NODES", "sync"), ("STORE_NODES", "store")):
        for name in nodes["sync"] + nodes["store"]:
            entries = parse_node_list(services[name]["environment"][variable])
            if [host for host, _, _ in entries] != nodes[role]:
                problems.append(f"{name}: {variable} does not list {nodes[role]} in id order")
            for host, port, cluster_port in entries:
                if host not in services:
                    problems.append(f"{name}: {variable} names unknown service {host}")
                    continue
                peer = services[host]["environment"]
                if (str(port), str(cluster_port)) != (peer["PORT"], peer["CLUSTER_PORT"]):
                    problems.append(f"{name}: {variable} ports of {host} != its PORT/CLUSTER_PORT")

    for name in nodes["sync"] + nodes["store"]:
        if services[name]["restart"] != "unless-stopped":
            problems.append(f"{name}: restart is {services[name]['restart']}")
        test = services[name]["healthcheck"]["test"]
        if test[-1] != services[name]["environment"]["PORT"]:
            problems.append(f"{name}: health check port {test[-1]} != PORT")
    for name in client_names:
        if services[name]["restart"] != "on-failure":
            problems.append(f"{name}: restart is {services[name]['restart']}")
        depends_on = services[name]["depends_on"]
        if sorted(depends_on) != sorted(nodes["sync"] + nodes["store"]):
            problems.append(f"{name}: depends_on {sorted(depends_on)}")
        if any(dep["condition"] != "service_healthy" for dep in depends_on.values()):
            problems.append(f"{name}: a dependency is not service_healthy")
    return problems


def all_problems(documents: list[dict[str, Any]]) -> list[str]:
    return (
        check_selectors(documents)
        + check_peer_addresses(documents)
        + check_ports(documents)
        + check_majority(documents)
    )


SIZES = [(sync, store) for sync in range(1, gen.MAX_SYNC + 1) for store in range(1, 6)]


@pytest.mark.parametrize(("sync", "store"), SIZES)
def test_semantics_hold_for_sizes(sync: int, store: int) -> None:
    documents, compose = render_documents(sync=sync, store=store, clients=3)

    assert all_problems(documents) == []
    assert check_compose(compose, sync, store, 3) == []


@pytest.mark.parametrize("namespace", ["lab", "a", "x" * 63, "team-7"])
def test_semantics_hold_for_namespaces(namespace: str) -> None:
    documents, _ = render_documents(namespace=namespace)

    assert {doc["metadata"].get("namespace", namespace) for doc in documents} == {namespace}
    assert all_problems(documents) == []


def test_semantics_hold_for_max_clients() -> None:
    documents, compose = render_documents(clients=gen.MAX_CLIENTS)
    (job,) = of_kind(documents, "Job")

    assert check_compose(compose, 5, 3, gen.MAX_CLIENTS) == []
    assert job["spec"]["completions"] == gen.MAX_CLIENTS
    assert job["spec"]["parallelism"] == gen.MAX_CLIENTS


# Negative tests: each broken manifest must be reported by its checker.


def find(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in of_kind(documents, kind) if d["metadata"]["name"] == name]
    return doc


def broken_copy(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(documents)


def test_selector_check_rejects_wrong_service() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    find(broken, "Service", "sync")["spec"]["selector"]["app.kubernetes.io/component"] = "store"

    problems = check_selectors(broken)

    assert any("Service sync" in problem for problem in problems)


def test_selector_check_rejects_label_typo() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    find(broken, "PodDisruptionBudget", "sync")["spec"]["selector"]["matchLabels"][
        "app.kubernetes.io/name"
    ] = "cluster_sync"

    problems = check_selectors(broken)

    assert any("PodDisruptionBudget sync" in problem for problem in problems)


def test_selector_check_rejects_open_policy() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    rule = find(broken, "NetworkPolicy", "store")["spec"]["ingress"][1]
    rule["from"][0]["podSelector"]["matchExpressions"][1]["values"].append("client")

    problems = check_selectors(broken)

    assert any("NetworkPolicy store" in problem for problem in problems)


def test_selector_check_rejects_statefulset() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    find(broken, "StatefulSet", "store")["spec"]["template"]["metadata"]["labels"][
        "app.kubernetes.io/component"
    ] = "backup"

    problems = check_selectors(broken)

    assert any("StatefulSet store" in problem for problem in problems)


def test_peer_check_rejects_missing_pod() -> None:
    documents, _ = render_documents(sync=3)
    broken = broken_copy(documents)
    config = find(broken, "ConfigMap", "cluster-config")
    config["data"]["SYNC_NODES"] += ",sync-3.sync.cluster-sync:5000:6000"

    problems = check_peer_addresses(broken)

    assert any("sync-3.sync.cluster-sync names no StatefulSet pod" in p for p in problems)


def test_peer_check_rejects_wrong_namespace() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    config = find(broken, "ConfigMap", "cluster-config")
    config["data"]["STORE_NODES"] = config["data"]["STORE_NODES"].replace(
        "store-0.store.cluster-sync", "store-0.store.default"
    )

    problems = check_peer_addresses(broken)

    assert any("store-0.store.default names no Service" in p for p in problems)


def test_peer_check_rejects_wrong_order() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    config = find(broken, "ConfigMap", "cluster-config")
    entries = config["data"]["SYNC_NODES"].split(",")
    config["data"]["SYNC_NODES"] = ",".join(reversed(entries))

    problems = check_peer_addresses(broken)

    assert any("entry 1 is sync-4" in problem for problem in problems)


def test_port_check_rejects_mismatch() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    find(broken, "Service", "store")["spec"]["ports"][1]["port"] = 6001

    problems = check_ports(broken)

    assert any("Service store: port 6001" in problem for problem in problems)


def test_port_check_rejects_probe_port() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    container = containers(find(broken, "StatefulSet", "sync"))[0]
    container["livenessProbe"]["exec"]["command"][-1] = "5001"

    problems = check_ports(broken)

    assert any("livenessProbe" in problem for problem in problems)


def test_port_check_rejects_policy_port() -> None:
    documents, _ = render_documents()
    broken = broken_copy(documents)
    find(broken, "NetworkPolicy", "sync")["spec"]["ingress"][1]["ports"][0]["port"] = "peer"

    problems = check_ports(broken)

    assert any("port peer is no container port" in problem for problem in problems)


def test_majority_check_rejects_minority() -> None:
    documents, _ = render_documents(sync=5)
    broken = broken_copy(documents)
    find(broken, "PodDisruptionBudget", "sync")["spec"]["minAvailable"] = 2

    problems = check_majority(broken)

    assert problems == ["PodDisruptionBudget: minAvailable is not a majority (3)"]


@pytest.mark.parametrize(("sync", "majority"), [(1, 1), (2, 2), (3, 2), (4, 3), (9, 5)])
def test_pdb_min_available_is_majority(sync: int, majority: int) -> None:
    documents, _ = render_documents(sync=sync)

    assert find(documents, "PodDisruptionBudget", "sync")["spec"]["minAvailable"] == majority


def test_compose_check_rejects_wrong_id() -> None:
    _, compose = render_documents()
    compose["services"]["cluster_store_2"]["environment"]["ID"] = "3"

    problems = check_compose(compose, 5, 3, 5)

    assert problems == ["cluster_store_2: ID 3 != 2"]


def test_compose_check_rejects_missing_dependency() -> None:
    _, compose = render_documents()
    del compose["services"]["client_4"]["depends_on"]["cluster_sync_5"]

    problems = check_compose(compose, 5, 3, 5)

    assert len(problems) == 1
    assert problems[0].startswith("client_4: depends_on")


def test_compose_check_rejects_unknown_peer() -> None:
    _, compose = render_documents(sync=3)
    environment = compose["services"]["cluster_sync_1"]["environment"]
    nodes = environment["SYNC_NODES"]
    environment["SYNC_NODES"] = nodes.replace("cluster_sync_3", "cluster_sync_4")

    problems = check_compose(compose, 3, 3, 5)

    assert "cluster_sync_1: SYNC_NODES names unknown service cluster_sync_4" in problems


# Pod identity, security and volumes.


def test_node_id_comes_from_pod_name() -> None:
    documents, _ = render_documents()

    for statefulset in of_kind(documents, "StatefulSet"):
        env = containers(statefulset)[0]["env"]
        pod_name = [item for item in env if item["name"] == "POD_NAME"]
        assert pod_name == [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ]
        assert "ID" not in {item["name"] for item in env}


def test_client_id_comes_from_completion_index() -> None:
    documents, _ = render_documents(clients=4)
    (job,) = of_kind(documents, "Job")
    env_names = {item["name"] for item in containers(job)[0]["env"]}

    assert job["spec"]["completionMode"] == "Indexed"
    # With neither ID nor POD_NAME set, the CLI falls back to JOB_COMPLETION_INDEX + 1.
    assert "ID" not in env_names
    assert "POD_NAME" not in env_names
    assert env_names == {"MESSAGES"}


def test_pods_are_hardened() -> None:
    documents, _ = render_documents()

    for workload in workloads(documents):
        pod_spec = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod_spec["securityContext"]["runAsNonRoot"] is True, name
        assert pod_spec["securityContext"]["runAsUser"] != 0, name
        assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod_spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert set(container["resources"]) == {"requests", "limits"}, name


def test_pods_share_one_data_volume() -> None:
    documents, compose = render_documents()
    (claim,) = of_kind(documents, "PersistentVolumeClaim")

    for workload in workloads(documents):
        pod_spec = workload["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod_spec["volumes"]}
        claim_name = volumes["data"]["persistentVolumeClaim"]["claimName"]
        assert claim_name == claim["metadata"]["name"]
        assert "emptyDir" in volumes["tmp"]
        mounts = {mount["mountPath"] for mount in pod_spec["containers"][0]["volumeMounts"]}
        assert {"/data", "/tmp"} <= mounts

    for name, service in compose["services"].items():
        assert service["volumes"] == ["shared_data:/data"], name
        assert service["environment"]["DATA_DIR"] == "/data", name
    assert compose["secrets"] == {"cluster_key": {"file": "./cluster.key"}}


def test_nodes_get_the_key() -> None:
    documents, compose = render_documents()

    for statefulset in of_kind(documents, "StatefulSet"):
        name = statefulset["metadata"]["name"]
        pod_spec = statefulset["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod_spec["volumes"]}
        mounts = {mount["name"]: mount for mount in pod_spec["containers"][0]["volumeMounts"]}
        env = {item["name"]: item.get("value") for item in pod_spec["containers"][0]["env"]}
        assert volumes["cluster-key"]["secret"]["secretName"] == "cluster-key", name
        assert mounts["cluster-key"]["mountPath"] == "/etc/cluster", name
        assert env["CLUSTER_KEY_FILE"] == "/etc/cluster/key", name

    for name, service in compose["services"].items():
        if name.startswith("client_"):
            continue
        assert service["secrets"] == ["cluster_key"], name
        assert service["environment"]["CLUSTER_KEY_FILE"] == "/run/secrets/cluster_key", name


def test_clients_get_no_key() -> None:
    # Clients use the client ports, which need no key (docs/security.md), so
    # a client pod or container must not be able to read the cluster key.
    documents, compose = render_documents(clients=3)
    (job,) = of_kind(documents, "Job")
    (config,) = of_kind(documents, "ConfigMap")
    pod_spec = job["spec"]["template"]["spec"]

    assert [volume["name"] for volume in pod_spec["volumes"]] == ["data", "tmp"]
    assert [mount["name"] for mount in pod_spec["containers"][0]["volumeMounts"]] == ["data", "tmp"]
    assert "CLUSTER_KEY_FILE" not in config["data"]
    for name in ("client_1", "client_2", "client_3"):
        service = compose["services"][name]
        assert "secrets" not in service, name
        assert "CLUSTER_KEY_FILE" not in service["environment"], name


def test_key_secret_is_not_generated() -> None:
    documents, _ = render_documents()

    assert of_kind(documents, "Secret") == []


# Generator command line, errors and drift of the committed output.


def run_generator(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR_PATH), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )


def generated_files(root: Path) -> dict[str, str]:
    files = {}
    for folder in GENERATED_DIRS:
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root).as_posix()
            if path.is_file() and relative not in UNGENERATED_FILES:
                files[relative] = path.read_text(encoding="utf-8")
    return files


def test_committed_output_has_no_drift(tmp_path: Path) -> None:
    result = run_generator(out=tmp_path)
    assert result.returncode == 0, result.stderr

    fresh = generated_files(tmp_path)
    committed = generated_files(COMMITTED_DIR)

    assert sorted(committed) == sorted(fresh), "run `make manifests` and commit deploy/"
    for name in fresh:
        assert committed[name] == fresh[name], f"{name} drifted: run `make manifests`"


def test_output_is_deterministic(tmp_path: Path) -> None:
    first = run_generator("--sync", "7", "--store", "2", out=tmp_path / "a")
    second = run_generator("--sync", "7", "--store", "2", out=tmp_path / "b")

    assert first.returncode == second.returncode == 0
    assert generated_files(tmp_path / "a") == generated_files(tmp_path / "b")


BAD_SETTINGS = [
    (("--sync", "0"), "--sync 0"),
    (("--sync", "-3"), "--sync -3"),
    (("--sync", "10"), "--sync 10"),
    (("--store", "0"), "--store 0"),
    (("--store", "10"), "--store 10"),
    (("--clients", "0"), "--clients 0"),
    (("--clients", "51"), "--clients 51"),
    (("--messages", "0"), "--messages 0"),
    (("--messages", "100001"), "--messages 100001"),
    (("--namespace", "Cluster"), "'Cluster'"),
    (("--namespace=-lab",), "'-lab'"),
    (("--namespace", "lab_1"), "'lab_1'"),
    (("--namespace", "lab.one"), "'lab.one'"),
    (("--namespace", "x" * 64), "x" * 64),
    (("--namespace", ""), "''"),
    (("--namespace", "kube-system"), "'kube-system'"),
    (("--namespace", "kube-public"), "'kube-public'"),
    (("--namespace", "default"), "'default'"),
    (("--image", "Cluster-Sync:1"), "'Cluster-Sync:1'"),
    (("--image", "cluster-sync:"), "'cluster-sync:'"),
    (("--image", "cluster-sync:-1"), "'cluster-sync:-1'"),
    (("--image", "cluster sync:1"), "'cluster sync:1'"),
    (("--image", "cluster-sync:" + "t" * 129), "t" * 129),
    (("--image", "a" * 256 + ":1"), "a" * 256),
    (("--image", "cluster-sync@sha256:abc"), "'cluster-sync@sha256:abc'"),
]


@pytest.mark.parametrize(("args", "value"), BAD_SETTINGS)
def test_invalid_setting_is_rejected(args: tuple[str, ...], value: str, tmp_path: Path) -> None:
    result = run_generator(*args, out=tmp_path)

    assert result.returncode == 2
    assert value in result.stderr
    assert "error:" in result.stderr
    assert re.search(r"\b(use|must)\b", result.stderr), "the error must say how to fix it"
    assert not any(tmp_path.iterdir()), "nothing may be written on error"


@pytest.mark.parametrize(
    ("option", "value", "maximum"),
    [("--sync", "five", 9), ("--store", "3.5", 9), ("--clients", "", 50), ("--messages", "1e3", 100000)],
)
def test_non_integer_size_is_rejected(option: str, value: str, maximum: int, tmp_path: Path) -> None:
    result = run_generator(option, value, out=tmp_path)

    assert result.returncode == 2
    assert f"argument {option}: {value!r} is not a whole number" in result.stderr
    assert f"use a value from 1 to {maximum}" in result.stderr
    assert not any(tmp_path.iterdir()), "nothing may be written on error"


@pytest.mark.parametrize(("clients", "messages"), [(50, 100000), (2, 50001), (11, 10000)])
def test_too_many_messages_in_all_is_rejected(clients: int, messages: int, tmp_path: Path) -> None:
    result = run_generator("--clients", str(clients), "--messages", str(messages), out=tmp_path)

    assert result.returncode == 2
    assert f"--clients {clients} with --messages {messages} is {clients * messages} messages" in result.stderr
    assert f"their product is at most {gen.MAX_TOTAL_MESSAGES}" in result.stderr
    assert not any(tmp_path.iterdir()), "nothing may be written on error"


@pytest.mark.parametrize(("clients", "messages"), [(1, gen.MAX_MESSAGES), (50, 2000), (10, 10000)])
def test_messages_up_to_the_total_are_accepted(clients: int, messages: int, tmp_path: Path) -> None:
    result = run_generator("--clients", str(clients), "--messages", str(messages), out=tmp_path)

    assert result.returncode == 0, result.stderr


def test_invalid_count_hides_total_error(tmp_path: Path) -> None:
    result = run_generator("--clients", "51", "--messages", "100000", out=tmp_path)

    assert result.returncode == 2
    assert "--clients 51 is too large" in result.stderr
    assert "in all" not in result.stderr


def test_all_invalid_values_are_listed(tmp_path: Path) -> None:
    result = run_generator("--sync", "0", "--namespace", "Bad", out=tmp_path)

    assert result.returncode == 2
    assert "--sync 0" in result.stderr
    assert "'Bad'" in result.stderr


@pytest.mark.parametrize(
    "image",
    [
        "cluster-sync",
        "cluster-sync:0.1.0",
        "localhost:5000/cluster-sync:dev",
        "registry.example.com/team/cluster_sync:v1.2_rc-3",
        "cluster-sync@sha256:" + "a" * 64,
        "cluster-sync:0.1.0@sha256:" + "b" * 64,
    ],
)
def test_valid_image_is_accepted(image: str, tmp_path: Path) -> None:
    result = run_generator("--image", image, out=tmp_path)
    documents, _ = render_documents(image=image)

    assert result.returncode == 0, result.stderr
    for workload in workloads(documents):
        assert containers(workload)[0]["image"] == image


@pytest.mark.parametrize(
    ("sync", "counts"),
    [
        (2, "tolerate 0 failed nodes, no more than 1 node does;"),
        (4, "tolerate 1 failed node, no more than 3 nodes do;"),
        (8, "tolerate 3 failed nodes, no more than 7 nodes do;"),
    ],
)
def test_even_sync_count_warns(sync: int, counts: str, tmp_path: Path) -> None:
    result = run_generator("--sync", str(sync), out=tmp_path)

    assert result.returncode == 0
    assert f"warning: --sync {sync} is even" in result.stderr
    assert counts in result.stderr
    assert (tmp_path / "k8s" / "04-statefulset.yaml").is_file()


@pytest.mark.parametrize("sync", [1, 3, 5, 9])
def test_odd_sync_count_does_not_warn(sync: int, tmp_path: Path) -> None:
    result = run_generator("--sync", str(sync), out=tmp_path)

    assert result.returncode == 0
    assert "warning" not in result.stderr


# Image and make targets, checked without a Docker engine.


def dockerfile_stages() -> list[str]:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    return re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]


def test_dockerfile_pins_base_image() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)

    assert match is not None
    assert re.fullmatch(r"python:3\.1[1-9]\.\d+-slim-[a-z]+", match.group(1))
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in dockerfile_stages())


def test_dockerfile_final_stage_is_minimal() -> None:
    stages = dockerfile_stages()
    final = stages[-1]

    assert len(stages) == 2
    assert "pip install" not in final
    assert "apt-get" not in final
    assert re.search(r"^USER 10001:10001$", final, flags=re.MULTILINE)
    assert 'HEALTHCHECK' in final
    assert 'CMD cluster health --port "${PORT}"' in final
    assert re.search(r"^ENTRYPOINT \[\"cluster\"\]$", final, flags=re.MULTILINE)


def test_dockerignore_excludes_key() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]

    # Everything is excluded first, and the key is not allowed back in.
    assert patterns[0] == "*"
    assert not any("cluster.key" in pattern or "deploy" in pattern for pattern in patterns)


def docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return result.returncode == 0


@pytest.mark.skipif(
    not docker_engine_available(), reason="no Docker engine on this machine: image not built"
)
def test_image_runs_as_non_root() -> None:
    image = "cluster-sync:manifest-test"
    subprocess.run(["docker", "build", "-t", image, str(REPO_ROOT)], check=True)

    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Config.User}}", image],
        capture_output=True, text=True, check=True,
    )

    assert result.stdout.strip() == "10001:10001"


MAKE = shutil.which("make")


def run_make_without_tools(target: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    return subprocess.run(
        [MAKE, "--no-print-directory", target],
        cwd=REPO_ROOT,
        env={"PATH": str(empty_bin), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("target", "tool"),
    [
        ("kind-up", "docker"),
        ("kind-down", "kind"),
        ("minikube-up", "docker"),
        ("minikube-down", "minikube"),
        ("compose-up", "docker"),
        ("compose-down", "docker"),
    ],
)
def test_make_target_reports_missing_tool(target: str, tool: str, tmp_path: Path) -> None:
    result = run_make_without_tools(target, tmp_path)
    our_lines = [line for line in result.stderr.splitlines() if not line.startswith("make")]

    assert result.returncode != 0
    assert our_lines == [
        f"error: {tool} not found on PATH; install it to use 'make {target}'"
        " (see docs/deploy.md or docs/pt-BR/deploy.md)"
    ]
    assert result.stdout == ""


def test_no_key_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "deploy"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: cannot list tracked files")

    assert not [name for name in tracked.stdout.splitlines() if name.endswith(".key")]
