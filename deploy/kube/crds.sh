#!/usr/bin/env bash
# Generates the Prometheus Operator's monitoring.coreos.com CRDs of VERSION
# from its published Go API types with controller-gen into DIR/crds, once.
#   deploy/kube/crds.sh v0.95.2 DIR
set -euo pipefail
version=${1:?version, e.g. v0.95.2}
dir=${2:?output directory}
ls "$dir"/crds/monitoring.coreos.com_*.yaml >/dev/null 2>&1 && exit 0
mkdir -p "$dir/src"
cd "$dir/src"
printf 'module crds\n\ngo 1.26.0\n' > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
GO
go get "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@$version" sigs.k8s.io/controller-tools@v0.23.0
go mod tidy
GOBIN="$dir" go install sigs.k8s.io/controller-tools/cmd/controller-gen
"$dir/controller-gen" crd:crdVersions=v1,maxDescLen=0 \
  paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir="$dir/crds"
