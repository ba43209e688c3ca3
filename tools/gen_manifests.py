#!/usr/bin/env python3
"""Generate the docker-compose file and the Kubernetes manifests of a cluster.

The templates in tools/templates/ hold one resource kind each and share the
macros in macros.j2. Rendering is deterministic: the same settings always give
the same bytes, so the committed default output can be checked for drift.

Exit status: 0 on success, 2 on invalid settings (one error line per value).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_OUT = REPO_ROOT / "deploy"

# Upper limits for one lab cluster. Nine sync nodes tolerate four failures,
# enough for the failover exercises in docs/deploy.md. Every node is a pod or
# container with its own resource requests, and the limits keep the whole
# cluster on one laptop-sized machine.
MAX_SYNC = 9
MAX_STORE = 9
MAX_CLIENTS = 50
MAX_MESSAGES = 100_000
# Upper limit of --clients times --messages, because every message is kept in
# the data volume and in the memory of every store node (see NODE_RESOURCES).
# In `cluster run --sync 3 --store 3 --clients 5 --messages 2000`, a message of
# the form the clients send took about 40 bytes in output.txt and in each
# backup and WAL file, and about 245 bytes in its client's log. So 100,000
# messages with MAX_STORE store nodes fill about 100 MB of the 256Mi volume.
MAX_TOTAL_MESSAGES = 100_000

DEFAULT_SYNC = 5
DEFAULT_STORE = 3
DEFAULT_CLIENTS = 5
DEFAULT_MESSAGES = 10
DEFAULT_IMAGE = "cluster-sync:0.1.0"
DEFAULT_NAMESPACE = "cluster-sync"

# Ports inside every container. The Dockerfile sets the same defaults.
CLIENT_PORT = 5000
CLUSTER_PORT = 6000

# Non-root user of the image (see the Dockerfile).
IMAGE_UID = 10001

DATA_DIR = "/data"
KEY_DIR = "/etc/cluster"
KEY_SECRET = "cluster-key"
COMPOSE_SECRET = "cluster_key"
COMPOSE_VOLUME = "shared_data"

# Output files, in the order `kubectl apply -f deploy/k8s/` must create them:
# kubectl applies the files of a directory in name order.
K8S_OUTPUTS = (
    ("00-namespace.yaml", "k8s/namespace.yaml.j2"),
    ("01-configmap.yaml", "k8s/configmap.yaml.j2"),
    ("02-persistentvolumeclaim.yaml", "k8s/persistentvolumeclaim.yaml.j2"),
    ("03-service.yaml", "k8s/service.yaml.j2"),
    ("04-statefulset.yaml", "k8s/statefulset.yaml.j2"),
    ("05-poddisruptionbudget.yaml", "k8s/poddisruptionbudget.yaml.j2"),
    ("06-networkpolicy.yaml", "k8s/networkpolicy.yaml.j2"),
    ("07-job.yaml", "k8s/job.yaml.j2"),
)
COMPOSE_OUTPUT = ("compose/docker-compose.yml", "compose/docker-compose.yml.j2")

# RFC 1123 label, the form Kubernetes requires of a namespace name.
RFC1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_LABEL_LENGTH = 63

# Image reference grammar that Docker and the kubelet accept (the
# distribution reference format): [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
MAX_IMAGE_NAME_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Settings:
    """Cluster sizes and names that the manifests are rendered from."""

    sync: int = DEFAULT_SYNC
    store: int = DEFAULT_STORE
    clients: int = DEFAULT_CLIENTS
    messages: int = DEFAULT_MESSAGES
    image: str = DEFAULT_IMAGE
    namespace: str = DEFAULT_NAMESPACE


@dataclass(frozen=True, slots=True)
class Resources:
    """CPU and memory requests and limits of one container, in Kubernetes quantities."""

    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


# Estimates for one node process of this package (Python interpreter plus
# asyncio networking), not measurements under load.
# NOTE: a store node keeps its whole log in memory. The 256Mi data volume
# fills at about 220,000 messages of 100 bytes (seven copies of each entry
# plus the client logs, an estimate). Loading a log of 220,000 such entries
# peaked at 142 MB of resident memory, and one of 690,000 at 410 MB, so a
# larger volume needs a larger memory limit for the store nodes.
NODE_RESOURCES = Resources("50m", "64Mi", "500m", "256Mi")
CLIENT_RESOURCES = Resources("20m", "48Mi", "250m", "128Mi")


class SettingsError(ValueError):
    """Invalid generator settings. The message names each value and its fix."""


def _check_size(option: str, value: int, maximum: int) -> str | None:
    if value < 1:
        return f"{option} {value} is invalid: it must be at least 1."
    if value > maximum:
        return (
            f"{option} {value} is too large: the maximum is {maximum}; "
            f"use a value from 1 to {maximum}."
        )
    return None


def _check_total_messages(clients: int, messages: int) -> str | None:
    total = clients * messages
    if total > MAX_TOTAL_MESSAGES:
        return (
            f"--clients {clients} with --messages {messages} is {total} messages in all, too many: "
            f"the data volume and the store nodes' memory limit hold about {MAX_TOTAL_MESSAGES}; "
            f"lower --clients or --messages so that their product is at most {MAX_TOTAL_MESSAGES}."
        )
    return None


def _check_namespace(namespace: str) -> str | None:
    if len(namespace) > MAX_LABEL_LENGTH or not RFC1123_LABEL.fullmatch(namespace):
        return (
            f"--namespace {namespace!r} is invalid: a namespace must be an RFC 1123 label "
            f"(at most {MAX_LABEL_LENGTH} lowercase letters, digits and '-', starting and "
            "ending with a letter or digit), for example 'cluster-sync'."
        )
    if namespace.startswith("kube-") or namespace == "default":
        return (
            f"--namespace {namespace!r} is a namespace Kubernetes itself uses, and the generated "
            "Namespace object would relabel it; use a namespace of its own, for example 'cluster-sync'."
        )
    return None


def _check_image(image: str) -> str | None:
    match = IMAGE_REFERENCE.fullmatch(image)
    if match is None:
        return (
            f"--image {image!r} is invalid: use an image reference such as "
            "'cluster-sync:0.1.0' or 'registry.example:5000/team/cluster-sync:0.1.0' "
            "(lowercase repository path, optional tag of letters, digits, '_', '.', '-')."
        )
    name_length = len(match.group("path")) + len(match.group("domain") or "")
    if name_length > MAX_IMAGE_NAME_LENGTH:
        return (
            f"--image {image!r} is invalid: the repository name is {name_length} characters "
            f"long and the maximum is {MAX_IMAGE_NAME_LENGTH}; use a shorter name."
        )
    return None


def validate_settings(settings: Settings) -> None:
    """Raise SettingsError listing every invalid value in settings."""
    client_problems = [
        _check_size("--clients", settings.clients, MAX_CLIENTS),
        _check_size("--messages", settings.messages, MAX_MESSAGES),
    ]
    if client_problems == [None, None]:
        # Checked only when both counts are valid, so that one bad value gives one error.
        client_problems.append(_check_total_messages(settings.clients, settings.messages))
    problems = [
        _check_size("--sync", settings.sync, MAX_SYNC),
        _check_size("--store", settings.store, MAX_STORE),
        *client_problems,
        _check_namespace(settings.namespace),
        _check_image(settings.image),
    ]
    errors = [problem for problem in problems if problem is not None]
    if errors:
        raise SettingsError("\n".join(errors))


def even_sync_warning(settings: Settings) -> str | None:
    """Return the warning for an even sync count, or None for an odd one."""
    if settings.sync % 2 == 1:
        return None
    tolerated = (settings.sync - 1) // 2
    failed = "failed node" if tolerated == 1 else "failed nodes"
    smaller = "1 node does" if settings.sync == 2 else f"{settings.sync - 1} nodes do"
    return (
        f"warning: --sync {settings.sync} is even: {settings.sync} sync nodes tolerate "
        f"{tolerated} {failed}, no more than {smaller}; an odd count is recommended."
    )


def _node_list(hosts: Sequence[str]) -> str:
    return ",".join(f"{host}:{CLIENT_PORT}:{CLUSTER_PORT}" for host in hosts)


def _k8s_hosts(role: str, count: int, namespace: str) -> list[str]:
    # Per-pod DNS name of a StatefulSet pod behind its headless Service.
    return [f"{role}-{ordinal}.{role}.{namespace}" for ordinal in range(count)]


def _compose_services(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"service": f"{prefix}_{node_id}", "id": node_id} for node_id in range(1, count + 1)]


def command_line(settings: Settings) -> str:
    """Return the generator command line that reproduces settings."""
    return (
        f"tools/gen_manifests.py --sync {settings.sync} --store {settings.store} "
        f"--clients {settings.clients} --messages {settings.messages} "
        f"--image {settings.image} --namespace {settings.namespace}"
    )


def template_context(settings: Settings) -> dict[str, Any]:
    """Build the values that every template renders from."""
    sync_services = _compose_services("cluster_sync", settings.sync)
    store_services = _compose_services("cluster_store", settings.store)
    roles = [
        {
            "name": "sync",
            "replicas": settings.sync,
            "resources": NODE_RESOURCES,
            "compose_nodes": sync_services,
        },
        {
            "name": "store",
            "replicas": settings.store,
            "resources": NODE_RESOURCES,
            "compose_nodes": store_services,
        },
    ]
    header = (
        f"# Generated by {command_line(settings)}\n"
        "# Do not edit: change the templates in tools/templates/ and rerun."
    )
    return {
        "header": header,
        "namespace": settings.namespace,
        "image": settings.image,
        "clients": settings.clients,
        "messages": settings.messages,
        "roles": roles,
        "client_nodes": _compose_services("client", settings.clients),
        "client_resources": CLIENT_RESOURCES,
        "client_backoff_limit": 3 * settings.clients,
        "sync_majority": settings.sync // 2 + 1,
        "client_port": CLIENT_PORT,
        "cluster_port": CLUSTER_PORT,
        "uid": IMAGE_UID,
        "data_dir": DATA_DIR,
        "data_claim": "cluster-data",
        "data_size": "256Mi",
        "key_dir": KEY_DIR,
        "key_file": f"{KEY_DIR}/key",
        "key_secret": KEY_SECRET,
        "sync_nodes_k8s": _node_list(_k8s_hosts("sync", settings.sync, settings.namespace)),
        "store_nodes_k8s": _node_list(_k8s_hosts("store", settings.store, settings.namespace)),
        "sync_nodes_compose": _node_list([node["service"] for node in sync_services]),
        "store_nodes_compose": _node_list([node["service"] for node in store_services]),
        "compose_volume": COMPOSE_VOLUME,
        "compose_secret": COMPOSE_SECRET,
        "compose_key_file": f"/run/secrets/{COMPOSE_SECRET}",
    }


def _quote(value: object) -> str:
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(str(value))


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["quote"] = _quote
    return environment


def render(settings: Settings) -> dict[str, str]:
    """Render every output file and return its text keyed by path under the output dir."""
    validate_settings(settings)
    environment = _environment()
    context = template_context(settings)
    outputs = [COMPOSE_OUTPUT] + [(f"k8s/{name}", template) for name, template in K8S_OUTPUTS]

    files: dict[str, str] = {}
    for relative_path, template_name in outputs:
        text = environment.get_template(template_name).render(context)
        files[relative_path] = text.lstrip("\n")
    return files


def write_files(out_dir: Path, files: dict[str, str]) -> None:
    """Write files under out_dir, creating the folders they need."""
    for relative_path in sorted(files):
        path = out_dir / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[relative_path], encoding="utf-8")


def _whole_number(maximum: int) -> Callable[[str], int]:
    """Return an argparse type that parses a whole number and names the allowed range on error."""

    def parse(value: str) -> int:
        try:
            return int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a whole number; use a value from 1 to {maximum}"
            ) from None

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate deploy/compose/docker-compose.yml and deploy/k8s/*.yaml.",
    )
    parser.add_argument(
        "--sync", type=_whole_number(MAX_SYNC), default=DEFAULT_SYNC,
        help=f"number of sync nodes, 1 to {MAX_SYNC} (default {DEFAULT_SYNC})",
    )
    parser.add_argument(
        "--store", type=_whole_number(MAX_STORE), default=DEFAULT_STORE,
        help=f"number of store nodes, 1 to {MAX_STORE} (default {DEFAULT_STORE})",
    )
    parser.add_argument(
        "--clients", type=_whole_number(MAX_CLIENTS), default=DEFAULT_CLIENTS,
        help=f"number of clients, 1 to {MAX_CLIENTS} (default {DEFAULT_CLIENTS})",
    )
    parser.add_argument(
        "--messages", type=_whole_number(MAX_MESSAGES), default=DEFAULT_MESSAGES,
        help=(
            f"messages each client sends, 1 to {MAX_MESSAGES} (default {DEFAULT_MESSAGES}); "
            f"--clients times --messages may be at most {MAX_TOTAL_MESSAGES}"
        ),
    )
    parser.add_argument(
        "--image", default=DEFAULT_IMAGE,
        help=f"container image reference NAME:TAG (default {DEFAULT_IMAGE})",
    )
    parser.add_argument(
        "--namespace", default=DEFAULT_NAMESPACE,
        help=f"Kubernetes namespace, an RFC 1123 label (default {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT,
        help="output directory (default: the repository's deploy/)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator with the command-line arguments argv and return the exit status."""
    args = _parser().parse_args(argv)
    settings = Settings(
        sync=args.sync,
        store=args.store,
        clients=args.clients,
        messages=args.messages,
        image=args.image,
        namespace=args.namespace,
    )
    try:
        files = render(settings)
    except SettingsError as error:
        for line in str(error).splitlines():
            print(f"gen_manifests: error: {line}", file=sys.stderr)
        return 2

    warning = even_sync_warning(settings)
    if warning is not None:
        print(f"gen_manifests: {warning}", file=sys.stderr)

    write_files(args.out, files)
    print(f"gen_manifests: wrote {len(files)} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
