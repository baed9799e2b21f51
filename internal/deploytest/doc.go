// Package deploytest holds the tests that check what SREs deploy, without
// Docker or a cluster: every Kubernetes manifest in deploy/k8s strict-decoded
// into the k8s.io/api types and cross-checked (probes, security context,
// config mounts, secrets, HPAs, PDBs, Services, ServiceMonitor, NATS
// replicas), docker-compose.yml cross-checked against the compose config and
// Prometheus, every payhook container's argv checked against the flags of
// the real binary (built once by the tests, run with argv + --version), the
// Dockerfile's build, and the Prometheus rules and Grafana
// dashboard (promtool check/test rules; every metric they use is in the
// README catalog). Run by `make test` through scripts/test.sh, which installs
// promtool first (scripts/tools.sh).
package deploytest
