package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/internal/testenv"
)

// binary is the exporter built once for the tests of this package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cometchat-exporter-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "cometchat_exporter")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the exporter:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type exporter struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string
	output *testenv.Buffer
	done   chan struct{}
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startExporter runs the binary with args and env (added to a minimal
// environment) and waits until it answers /-/healthy.
func startExporter(t testing.TB, env []string, args ...string) *exporter {
	t.Helper()
	addr := freeAddr(t)
	e := &exporter{t: t, addr: addr, output: &testenv.Buffer{}, done: make(chan struct{})}
	e.cmd = exec.Command(binary, append([]string{"--web.listen-address=" + addr}, args...)...)
	e.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	e.cmd.Stdout, e.cmd.Stderr = e.output, e.output
	require.NoError(t, e.cmd.Start())
	go func() { e.cmd.Wait(); close(e.done) }()
	t.Cleanup(func() { e.kill() })
	eventually(t, 10*time.Second, func() bool {
		select {
		case <-e.done:
			t.Fatalf("exporter exited early:\n%s", e.output.String())
		default:
		}
		return e.status("/-/healthy") == 200
	}, "exporter healthy")
	return e
}

func (e *exporter) kill() {
	if e.cmd.Process != nil {
		e.cmd.Process.Signal(syscall.SIGKILL)
		<-e.done
	}
}

func (e *exporter) stop() {
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		e.t.Fatalf("exporter did not stop on SIGTERM")
	}
}

func (e *exporter) get(path string) (int, string) {
	resp, err := http.Get("http://" + e.addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *exporter) status(path string) int { code, _ := e.get(path); return code }

func (e *exporter) waitReady() {
	eventually(e.t, 15*time.Second, func() bool { return e.status("/-/ready") == 200 }, "exporter ready")
}

// metrics scrapes and parses /metrics.
func (e *exporter) metrics() (string, metricSet) {
	e.t.Helper()
	code, body := e.get("/metrics")
	require.Equal(e.t, 200, code)
	return body, parseMetrics(e.t, body)
}

type metricSet map[string]*dto.MetricFamily

func parseMetrics(t testing.TB, body string) metricSet {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return fams
}

// count is the number of series of name whose labels include match.
func (m metricSet) count(name string, match map[string]string) int {
	n := 0
	if f, ok := m[name]; ok {
		for _, s := range f.Metric {
			if hasLabels(s, match) {
				n++
			}
		}
	}
	return n
}

func hasLabels(s *dto.Metric, match map[string]string) bool {
	for k, v := range match {
		found := false
		for _, l := range s.Label {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sum adds the values of every series of name whose labels include match.
// Histograms contribute their count. A missing metric sums to -1.
func (m metricSet) sum(name string, match map[string]string) float64 {
	f, ok := m[name]
	if !ok {
		return -1
	}
	total := 0.0
	for _, s := range f.Metric {
		if !hasLabels(s, match) {
			continue
		}
		switch {
		case s.Counter != nil:
			total += s.Counter.GetValue()
		case s.Gauge != nil:
			total += s.Gauge.GetValue()
		case s.Histogram != nil:
			total += float64(s.Histogram.GetSampleCount())
		case s.Untyped != nil:
			total += s.Untyped.GetValue()
		}
	}
	return total
}

// eventually waits for cond, checking every 50ms, failing after timeout.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
