// Package deploy holds the tests of the deployment files: the Helm chart
// (helm/), the compose quickstart (compose/) and the systemd unit
// (systemd/). It is a Go module of its own, so that the exporter's go.mod
// does not carry the Kubernetes API types these tests decode into.
package deploy
