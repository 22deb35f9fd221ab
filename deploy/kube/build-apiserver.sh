#!/usr/bin/env bash
# Builds kube-apiserver VERSION from the k8s.io/kubernetes Go module into
# DIR/kube-apiserver, once: its ./staging/... replaces point at the
# published k8s.io/* modules of the same minor version (v1.37.2 -> v0.37.2).
#   deploy/kube/build-apiserver.sh v1.37.2 DIR
set -euo pipefail
version=${1:?version, e.g. v1.37.2}
dir=${2:?output directory}
[ -x "$dir/kube-apiserver" ] && exit 0
staging="v0.${version#v1.}"
src="$dir/src"
mkdir -p "$src"
cd "$src"
go mod download -json "k8s.io/kubernetes@$version" >/dev/null
mod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$version.mod
{
  echo "module kube-apiserver-build"
  echo
  grep '^go ' "$mod"
  echo
  echo "require k8s.io/kubernetes $version"
  echo
  grep -E '=> ./staging' "$mod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
go mod tidy
GOBIN="$dir" go install k8s.io/kubernetes/cmd/kube-apiserver
