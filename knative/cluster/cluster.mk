# The local Knative cluster and the end-to-end tests, included by the Makefile.
# See docs/cluster.md.
#
#   make e2e            the end-to-end tests: against the current kube context if it
#                       has Knative Serving and Eventing, otherwise on a single-node
#                       cluster brought up on this machine and torn down afterwards
#   make cluster-up     bring the local cluster up and leave it running
#   make cluster-down   tear it down and check that nothing is left
#   make cluster-build  only build (cached in .cluster/cache)
#
# E2E_ARGS passes flags to go test, e.g. make e2e E2E_ARGS='-run Broker'.
# NAMESPACE (knative/deploy.mk, default "default") is where the suite deploys the
# project and tests it: make e2e NAMESPACE=cqrs-e2e.

CLUSTER_SH := knative/cluster/cluster.sh
E2E_ARGS ?=

.PHONY: e2e cluster-up cluster-down cluster-build cluster-status cluster-check

## e2e: end-to-end tests on Knative (current context, else a local cluster)
e2e:
	@CQRS_E2E_NAMESPACE=$(NAMESPACE) $(CLUSTER_SH) e2e $(E2E_ARGS)

## cluster-up: start the local single-node Kubernetes + Knative cluster
cluster-up:
	@$(CLUSTER_SH) up

## cluster-down: stop it and undo every change it made to the machine
cluster-down:
	@$(CLUSTER_SH) down

cluster-build:
	@$(CLUSTER_SH) build

cluster-status:
	@$(CLUSTER_SH) status

cluster-check:
	@$(CLUSTER_SH) check
