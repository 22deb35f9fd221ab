package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// make release in a clone tagged v0.0.7: archives named and laid out as
// promu lays them out, checksums that verify, and a binary that reports
// the tag's version. go install builds the module root as a command.
func TestReleaseArchives(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds the exporter")
	}
	sh := func(dir string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
		return string(out)
	}
	clone := filepath.Join(t.TempDir(), "src")
	sh(".", "git", "clone", "-q", ".", clone)
	sh(clone, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "tag", "-a", "v0.0.7", "-m", "v0.0.7")
	dist := filepath.Join(t.TempDir(), "dist")
	sh(clone, "make", "release", "PLATFORMS=linux/amd64 windows/amd64", "DIST="+dist)

	entries, err := os.ReadDir(dist)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"cometchat_exporter-0.0.7.linux-amd64.tar.gz", "cometchat_exporter-0.0.7.windows-amd64.tar.gz", "sha256sums.txt"}, names)
	sh(dist, "sha256sum", "-c", "sha256sums.txt")
	listing := sh(dist, "tar", "-tzf", "cometchat_exporter-0.0.7.windows-amd64.tar.gz")
	assert.Contains(t, listing, "cometchat_exporter-0.0.7.windows-amd64/cometchat_exporter.exe")
	assert.Contains(t, listing, "cometchat_exporter-0.0.7.windows-amd64/README.md")
	sh(dist, "tar", "-xzf", "cometchat_exporter-0.0.7.linux-amd64.tar.gz")
	version := sh(dist, filepath.Join(dist, "cometchat_exporter-0.0.7.linux-amd64", "cometchat_exporter"), "--version")
	assert.Contains(t, version, "cometchat_exporter, version 0.0.7 ")

	bin := t.TempDir()
	install := exec.Command("go", "install", ".")
	install.Env = append(os.Environ(), "GOBIN="+bin)
	out, err := install.CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(filepath.Join(bin, "cometchat-exporter"), "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "cometchat_exporter, version ")
}

// The image the README runs is one that make docker tags, and make docker
// builds with the version as its VERSION build argument.
func TestReadmeRunsTheImageMakeDockerBuilds(t *testing.T) {
	mk, err := os.ReadFile("Makefile")
	require.NoError(t, err)
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, target, ok := strings.Cut(string(mk), "\ndocker:\n")
	require.True(t, ok, "a docker target")
	recipe, _, _ := strings.Cut(target, "\n\n")
	assert.Contains(t, recipe, "--build-arg VERSION=$(VERSION_NUM)", "the version as the binaries print it")
	assert.Contains(t, recipe, "-t cometchat-exporter:latest")
	runs := regexp.MustCompile(`(?m)^\s*(cometchat-exporter:\S+)`).FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, runs, "the README's docker run names an image")
	for _, r := range runs {
		assert.Contains(t, recipe, "-t "+r[1], "make docker tags %s", r[1])
	}
	df, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	assert.Contains(t, string(df), "ARG VERSION=")
	assert.Contains(t, string(df), "version.Version=${VERSION}")
}
