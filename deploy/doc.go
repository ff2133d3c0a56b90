// Package deploy holds distore-server's deployment files — a systemd unit
// (distore-server.service), a container recipe (Dockerfile, FROM scratch) and
// a Kubernetes DaemonSet (kubernetes.yaml) — and the tests that parse them,
// check their flags against the server's own and run the container.
// docs/operating.md explains them.
package deploy
