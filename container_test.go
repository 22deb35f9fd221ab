package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/internal/testenv"
)

// The image, built and run on a real engine: podman (runc), the
// Dockerfile's prebuilt stage FROM scratch with a static binary built
// here (no registry is needed). The container runs read-only as the
// image's non-root user with its state on a volume; after a restart on
// the same volume the counters resume where they were.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a container")
	}
	podman := testenv.RequireTool(t, "podman")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(podman, append([]string{"--runtime", "runc"}, args...)...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "podman %s:\n%s", strings.Join(args, " "), out)
		return strings.TrimSpace(string(out))
	}

	ctx := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctx, "cometchat_exporter"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, f := range []string{"Dockerfile", "deploy/container/state/README"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(ctx, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(ctx, f), b, 0o644))
	}
	tag := fmt.Sprintf("localhost/cometchat-exporter-test:%d", time.Now().UnixNano())
	run("build", "--target", "prebuilt", "--build-arg", "RUNTIME_IMAGE=scratch", "-t", tag, ctx)
	t.Cleanup(func() { exec.Command(podman, "--runtime", "runc", "rmi", "-f", tag).Run() })
	volume := strings.TrimPrefix(strings.ReplaceAll(tag, ":", "-"), "localhost/")
	run("volume", "create", volume)
	t.Cleanup(func() { exec.Command(podman, "--runtime", "runc", "volume", "rm", "-f", volume).Run() })

	fake, base := fakeAPI(t)
	fake.Put(e2eCall("history", time.Hour, "ended"))
	start := func() (*exporter, string) {
		addr := freeAddr(t)
		name := fmt.Sprintf("cce-test-%d", time.Now().UnixNano())
		// The host's network: the container reaches the fake API on
		// 127.0.0.1, and the test scrapes it there.
		id := run("run", "-d", "--name", name, "--network", "host", "--read-only", "--cap-drop", "ALL",
			"-e", "COMETCHAT_API_KEY="+e2eKey, "-v", volume+":/var/lib/cometchat-exporter", tag,
			"--web.listen-address="+addr, "--cometchat.app-id=e2e", "--cometchat.base-url="+base,
			"--cometchat.poll-interval=200ms", "--state.file=/var/lib/cometchat-exporter/state.json")
		t.Cleanup(func() { exec.Command(podman, "--runtime", "runc", "rm", "-f", id).Run() })
		e := &exporter{t: t, addr: addr}
		eventually(t, 30*time.Second, func() bool { return e.status("/-/ready") == 200 }, "the container ready")
		return e, id
	}
	e, id := start()
	assert.Equal(t, "65532:65532", run("inspect", "--format", "{{.Config.User}}", tag), "a non-root user")
	fake.Put(e2eCall("one", 0, "ended"))
	fake.Put(e2eCall("two", 0, "rejected"))
	eventually(t, 10*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", nil) == 2 && m.sum("cometchat_exporter_state_persisted", nil) == 1
	}, "two calls counted and persisted in the container")
	run("stop", "-t", "10", id)

	fake.Put(e2eCall("three", 0, "ended")) // ended while the container was down
	e, _ = start()
	eventually(t, 10*time.Second, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", nil) == 3
	}, "the counters resumed from the volume: 2 before, 1 while down")
	_, m := e.metrics()
	assert.Equal(t, 0.0, m.sum("cometchat_exporter_state_recovered", nil))
	assert.Equal(t, 1.0, m.sum("cometchat_calls_total", map[string]string{"status": "rejected"}))
}
