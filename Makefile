# bottle: set-up, tests and benchmarks. `make test` prepares a fresh Debian 12
# machine (as root) and runs every test; each step skips what is already done.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
BOTTLE := $(VENV)/bin/bottle
PYTEST := $(VENV)/bin/pytest -p no:cacheprovider
# Reinstall into the venv when a distribution's metadata changes.
VENV_STAMP := $(VENV)/.bottle-installed
PROJECTS := pyproject.toml plugins/docker_backend/pyproject.toml plugins/smol_backend/pyproject.toml plugins/k8s_backend/pyproject.toml
# Every test folder: the repository's own, and each distribution's. One pytest run covers them all.
TEST_DIRS := tests plugins/docker_backend/tests plugins/smol_backend/tests plugins/k8s_backend/tests
UNIT_DIRS := tests/unit plugins/docker_backend/tests plugins/smol_backend/tests plugins/k8s_backend/tests
# Written by `make cluster`: KUBECONFIG and CONTAINERD_ADDRESS of the test cluster, exported to pytest.
CLUSTER_ENV := /var/lib/bottle-cluster/env
WITH_CLUSTER := set -a; . $(CLUSTER_ENV); set +a;

.PHONY: help setup host-packages engine engine-stop base-image kvm venv images cluster cluster-down test unit integration bench demo clean distclean

help:
	@echo "make test         set up the host (engine, base image, venv, images, test cluster) and run every test"
	@echo "make unit         unit tests only (no engine needed)"
	@echo "make integration  integration tests only"
	@echo "make bench        CLI start-up benchmark"
	@echo "make demo         set up as for test, then rehearse the whole system (scripts/demo.sh)"
	@echo "make setup        only the set-up steps of 'make test'"
	@echo "make engine-stop  stop the Docker engine, if 'make' started it"
	@echo "make cluster      build (once per source version) and start the one-node test Kubernetes; prints KUBECONFIG"
	@echo "make cluster-down stop the test Kubernetes and remove every trace of it (the build cache stays)"
	@echo "make clean        remove caches and build output (distclean: also .venv and .cache)"

setup: host-packages engine base-image kvm venv

host-packages:
	scripts/step.sh host-packages scripts/host-packages.sh

engine: host-packages
	scripts/step.sh engine scripts/engine.sh start

engine-stop:
	scripts/engine.sh stop

base-image: engine
	scripts/step.sh base-image scripts/base-image.sh

kvm:
	scripts/step.sh kvm scripts/kvm.sh

venv: $(VENV_STAMP)

$(VENV_STAMP): $(PROJECTS) scripts/venv.sh
	scripts/step.sh venv scripts/venv.sh
	touch $@

images: engine base-image venv
	scripts/step.sh images $(BOTTLE) image build

# The test cluster needs the engine: its pause image and the test images come from it.
cluster: engine
	scripts/step.sh cluster scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

test: setup images cluster
	$(WITH_CLUSTER) $(PYTEST) $(TEST_DIRS)

# Unit tests need no engine: DOCKER_HOST points nowhere, so a test that reached for one would fail.
unit: venv
	DOCKER_HOST=unix:///nonexistent/docker.sock $(PYTEST) $(UNIT_DIRS)

integration: setup images cluster
	$(WITH_CLUSTER) $(PYTEST) tests/integration

bench: venv
	$(PY) benchmarks/bench_cli.py

demo: setup images
	scripts/demo.sh

clean:
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf build dist .pytest_cache .benchmarks *.egg-info plugins/*/build plugins/*/*.egg-info examples/*/build examples/*/*.egg-info

distclean: clean engine-stop
	rm -rf $(VENV) .cache
