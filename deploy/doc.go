// Package deploy holds no code: its directory carries the Prometheus alert
// rules (prometheus/handoff-rules.yml, with promtool unit tests) and the
// Grafana dashboard (grafana/handoff.json) for handoff's /metrics, and its
// tests check that both load and name only metrics handoff serves.
package deploy
