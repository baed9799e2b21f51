# payhook — see README.md for the two commands a newcomer needs.
GO ?= go

.PHONY: devstack test build fuzz bench lint

devstack: ## start everything in one process (built, then run: Ctrl-C drains and exits 0)
	$(GO) build -o bin/devstack ./cmd/devstack
	./bin/devstack $(DEVSTACKFLAGS)

test: ## the full test suite (installs redis-server when missing)
	./scripts/test.sh

build:
	$(GO) build -o bin/ ./cmd/...

FUZZTIME ?= 30s
fuzz: ## run every fuzz target for FUZZTIME each
	./scripts/fuzz.sh $(FUZZTIME)

BENCHFLAGS ?=
bench: ## reproducible benchmark (docs/benchmarks.md): real NATS + Redis, ingress + dispatcher vs a bare echo baseline; ~2 min
	$(GO) run ./cmd/payhook-bench $(BENCHFLAGS)
