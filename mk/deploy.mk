# Deployment targets: manifest generation, Docker Compose, kind and minikube.
# See docs/deploy.md. The cluster targets need docker, kind or minikube, and
# kubectl on PATH; each one stops with a one-line error when a tool is missing.

.PHONY: manifests cluster-key compose-up compose-down \
	kind-up kind-down minikube-up minikube-down

IMAGE ?= cluster-sync:0.1.0
# Must match the namespace of the committed manifests in deploy/k8s/.
NAMESPACE ?= cluster-sync
KIND_CLUSTER ?= cluster-sync
MINIKUBE_PROFILE ?= cluster-sync
ROLLOUT_TIMEOUT ?= 180s
CLUSTER_KEY_FILE := deploy/compose/cluster.key
COMPOSE_FILE := deploy/compose/docker-compose.yml
K8S_DIR := deploy/k8s
# Arguments for tools/gen_manifests.py, for example MANIFEST_ARGS='--sync 7'.
# The committed files are the defaults; the drift test fails on any other output.
MANIFEST_ARGS ?=

# Stop with a one-line error unless the command $(1) is on PATH.
require_tool = @command -v $(1) >/dev/null 2>&1 || { \
	echo "error: $(1) not found on PATH; install it to use 'make $@' (see docs/deploy.md or docs/pt-BR/deploy.md)" >&2; \
	exit 127; }

# Stop with a one-line error unless the Docker Compose v2 plugin is installed.
require_compose = @docker compose version >/dev/null 2>&1 || { \
	echo "error: the docker compose plugin (Compose v2) was not found; install it to use 'make $@'" >&2; \
	exit 127; }

# Write a random 256-bit hex key to $(CLUSTER_KEY_FILE) unless the file exists.
# Mode 0644 because Compose bind-mounts the file with its host permissions and
# the container user (uid 10001) must read it.
define create_cluster_key
	@if [ ! -s $(CLUSTER_KEY_FILE) ]; then \
		$(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $(CLUSTER_KEY_FILE).tmp \
		&& chmod 0644 $(CLUSTER_KEY_FILE).tmp && mv $(CLUSTER_KEY_FILE).tmp $(CLUSTER_KEY_FILE) \
		&& echo "created $(CLUSTER_KEY_FILE)"; \
	fi
endef

# Create the namespace and the key Secret, start the store and sync nodes,
# wait for them, then start the client Job. $(1) is the kubectl context.
define k8s_apply
	kubectl --context $(1) apply -f $(K8S_DIR)/00-namespace.yaml
	kubectl --context $(1) -n $(NAMESPACE) create secret generic cluster-key \
		--from-file=key=$(CLUSTER_KEY_FILE) --dry-run=client -o yaml \
		| kubectl --context $(1) apply -f -
	kubectl --context $(1) apply \
		$(addprefix -f ,$(filter-out %/07-job.yaml,$(sort $(wildcard $(K8S_DIR)/*.yaml))))
	kubectl --context $(1) -n $(NAMESPACE) rollout status statefulset/store --timeout=$(ROLLOUT_TIMEOUT)
	kubectl --context $(1) -n $(NAMESPACE) rollout status statefulset/sync --timeout=$(ROLLOUT_TIMEOUT)
	kubectl --context $(1) apply -f $(K8S_DIR)/07-job.yaml
	kubectl --context $(1) -n $(NAMESPACE) get pods -o wide
endef

manifests: $(STAMP)
	$(BIN)/python tools/gen_manifests.py $(MANIFEST_ARGS)

cluster-key:
	$(create_cluster_key)

compose-up:
	$(call require_tool,docker)
	$(require_compose)
	$(create_cluster_key)
	docker build -t $(IMAGE) .
	docker compose -f $(COMPOSE_FILE) up -d
	docker compose -f $(COMPOSE_FILE) ps

compose-down:
	$(call require_tool,docker)
	$(require_compose)
	docker compose -f $(COMPOSE_FILE) down --volumes

kind-up:
	$(call require_tool,docker)
	$(call require_tool,kind)
	$(call require_tool,kubectl)
	$(create_cluster_key)
	docker build -t $(IMAGE) .
	kind get clusters | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER)
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)
	$(call k8s_apply,kind-$(KIND_CLUSTER))

kind-down:
	$(call require_tool,kind)
	kind delete cluster --name $(KIND_CLUSTER)

minikube-up:
	$(call require_tool,docker)
	$(call require_tool,minikube)
	$(call require_tool,kubectl)
	$(create_cluster_key)
	docker build -t $(IMAGE) .
	minikube status -p $(MINIKUBE_PROFILE) >/dev/null 2>&1 || minikube start -p $(MINIKUBE_PROFILE)
	minikube image load $(IMAGE) -p $(MINIKUBE_PROFILE)
	$(call k8s_apply,$(MINIKUBE_PROFILE))

minikube-down:
	$(call require_tool,minikube)
	minikube delete -p $(MINIKUBE_PROFILE)
