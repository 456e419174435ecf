# Cluster targets, included by the Makefile. They need a Kubernetes cluster with
# Knative Serving and Eventing, and helm, ko and kubectl on the PATH. ko pushes the
# images to $KO_DOCKER_REPO (for a kind cluster: KO_DOCKER_REPO=kind.local).
#
#   make images                      build and push the three images
#   make deploy                      Redis master + replica, then the Services,
#                                    the Broker and the Triggers, in NAMESPACE
#   make deploy NAMESPACE=cqrs       the same in the namespace cqrs (made if missing)
#   make deploy REDIS_MODE=sentinel  Redis with Sentinel and the functions of the
#                                    knative/sentinel overlay
#   make deploy REDIS_MODE=cluster   a Redis Cluster of three masters and three
#                                    replicas (Bitnami's redis-cluster chart) and
#                                    the functions of the knative/redis-cluster overlay
#   make deploy REDIS_TLS=on         Redis over TLS only, each function an ACL user
#                                    of its own (values-tls.yaml on top, and the
#                                    knative/tls or knative/sentinel-tls overlay)
#   make deploy OVERLAY=knative/cluster-local
#                                    the functions reachable inside the cluster only
#   make render                      print the manifests deploy applies (ko:// paths
#                                    unresolved)
#   make undeploy                    remove them again (the Redis volumes and the
#                                    password Secret stay, so data survives)

# Everything goes into this namespace: knative/render.sh renders the manifests
# through kustomize with it (and the UI's URLs of the functions name it).
NAMESPACE ?= default
# replication (a master and a replica), sentinel, or cluster (a Redis Cluster).
REDIS_MODE ?= replication
ifneq ($(filter-out replication sentinel cluster,$(REDIS_MODE)),)
$(error REDIS_MODE=$(REDIS_MODE): must be replication, sentinel or cluster)
endif
ifeq ($(REDIS_MODE),cluster)
# Another chart: Bitnami's redis chart has no cluster mode. Pinned, since its
# values pin an image of that version (docs/deploy.md, "Bitnami's images since 2025").
REDIS_CHART ?= oci://registry-1.docker.io/bitnamicharts/redis-cluster
REDIS_CHART_VERSION ?= 13.0.5
else
REDIS_CHART ?= oci://registry-1.docker.io/bitnamicharts/redis
# Empty means the chart's newest version; set it to pin one.
REDIS_CHART_VERSION ?=
endif
KO ?= ko
HELM ?= helm
KUBECTL ?= kubectl

# The three deployables, side by side in functions/cmd; the workstation tools (local
# stack, benchmark) live in functions/tools and never become images.
CQRS_IMAGES := ./functions/cmd/cqrs-write ./functions/cmd/cqrs-read ./functions/cmd/cqrs-ui

REDIS_TLS ?= off
ifneq ($(filter-out on off,$(REDIS_TLS)),)
$(error REDIS_TLS=$(REDIS_TLS): must be on or off)
endif

ifeq ($(REDIS_MODE),sentinel)
REDIS_VALUES := knative/redis/values-sentinel.yaml
PLAIN_OVERLAY := knative/sentinel
TLS_OVERLAY := knative/sentinel-tls
else ifeq ($(REDIS_MODE),cluster)
# The redis-cluster chart keeps no ACL users (the functions' TLS overlays log in as
# their own users), so TLS is not offered with it here: docs/deploy.md.
ifeq ($(REDIS_TLS),on)
$(error REDIS_MODE=cluster REDIS_TLS=on: Bitnami's redis-cluster chart has no ACL users for the functions; use REDIS_TLS=off, or a Redis Cluster of yours with an overlay of yours (docs/deploy.md))
endif
REDIS_VALUES := knative/redis/values-cluster.yaml
PLAIN_OVERLAY := knative/redis-cluster
else
REDIS_VALUES := knative/redis/values.yaml
PLAIN_OVERLAY := knative/base
TLS_OVERLAY := knative/tls
endif
ifeq ($(REDIS_TLS),on)
REDIS_VALUES += knative/redis/values-tls.yaml
OVERLAY ?= $(TLS_OVERLAY)
else
OVERLAY ?= $(PLAIN_OVERLAY)
endif

# Always through kustomize: the overlay (knative/base: the plain manifests) with
# every object in $(NAMESPACE).
KNATIVE_RENDER := KUBECTL=$(KUBECTL) knative/render.sh $(NAMESPACE) $(OVERLAY)

.PHONY: images deploy undeploy render namespace redis-secret redis-acl-secret check-ko-repo

check-ko-repo:
	@test -n "$$KO_DOCKER_REPO" || { echo "set KO_DOCKER_REPO to the image repository ko pushes to (kind.local for kind)" >&2; exit 1; }

## images: build the three images with ko and push them to $KO_DOCKER_REPO
images: check-ko-repo
	$(KO) build --base-import-paths $(CQRS_IMAGES)

## render: the manifests make deploy applies, for NAMESPACE and OVERLAY
render:
	@$(KNATIVE_RENDER)

## namespace: make NAMESPACE unless it exists
namespace:
	@$(KUBECTL) get namespace $(NAMESPACE) >/dev/null 2>&1 || $(KUBECTL) create namespace $(NAMESPACE)

## redis-secret: create the Redis password Secret once; never replace it
redis-secret: namespace
	@$(KUBECTL) get secret cqrs-redis --namespace $(NAMESPACE) >/dev/null 2>&1 || \
	  $(KUBECTL) create secret generic cqrs-redis --namespace $(NAMESPACE) \
	    --from-literal=redis-password="$$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"

## redis-acl-secret: create the functions' ACL passwords once (REDIS_TLS=on); never replace them
# The chart reads them at install time (auth.acl.userSecret: keys named after the
# users), so this comes first: a user whose key it cannot read gets no password.
redis-acl-secret: namespace
	@$(KUBECTL) get secret cqrs-redis-acl --namespace $(NAMESPACE) >/dev/null 2>&1 || \
	  $(KUBECTL) create secret generic cqrs-redis-acl --namespace $(NAMESPACE) \
	    --from-literal=cqrs-write="$$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" \
	    --from-literal=cqrs-read="$$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"

## deploy: Redis from Bitnami's chart, then the Knative Services, Broker and Triggers
deploy: check-ko-repo redis-secret $(if $(filter on,$(REDIS_TLS)),redis-acl-secret)
	$(HELM) upgrade --install cqrs-redis $(REDIS_CHART) $(if $(REDIS_CHART_VERSION),--version $(REDIS_CHART_VERSION)) \
	  --namespace $(NAMESPACE) $(addprefix -f ,$(REDIS_VALUES)) --wait --timeout 10m
	set -o pipefail; $(KNATIVE_RENDER) | $(KO) apply --base-import-paths -f -
	$(KUBECTL) wait --namespace $(NAMESPACE) --for=condition=Ready --timeout=5m \
	  ksvc/cqrs-write ksvc/cqrs-read ksvc/cqrs-ui \
	  broker/default trigger/cqrs-record-create trigger/cqrs-records-query

## undeploy: remove the Services, Broker, Triggers and the Redis release
undeploy:
	set -o pipefail; $(KNATIVE_RENDER) | $(KUBECTL) delete --ignore-not-found -f -
	-$(HELM) uninstall cqrs-redis --namespace $(NAMESPACE)
