package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
)

// BenchmarkBackfill20k runs the built binary against a local fake with
// 20,000 final calls from the last 72 hours, with --cometchat.backfill=72h
// and a 1 s poll interval, and measures what the README promises:
//
//   - seconds from process start until cometchat_calls_total reaches 20,000;
//   - the peak resident set size of the exporter (VmHWM);
//   - API requests per idle poll, over 10 s;
//   - the median /metrics latency over 50 scrapes.
//
// It runs twice: with the fake capping pages at 100 calls, and at 25 (the
// page size of the API overview's example), which takes four times the
// requests.
//
// Run: go test -run XXX -bench Backfill20k -benchtime 1x .
func BenchmarkBackfill20k(b *testing.B) {
	for _, perPage := range []int{100, 25} {
		b.Run(fmt.Sprintf("page-cap=%d", perPage), func(b *testing.B) { backfill20k(b, perPage) })
	}
}

func backfill20k(b *testing.B, perPage int) {
	for range b.N {
		fake := cometchattest.New(e2eKey)
		fake.MaxPer = perPage
		// Each poll lists status=ongoing exactly once: that counts polls.
		var polls atomic.Int64
		fake.SetBeforeRequest(func(r *http.Request) {
			if r.URL.Query().Get("status") == "ongoing" && r.URL.Query().Get("page") == "1" {
				polls.Add(1)
			}
		})
		now := time.Now()
		for i := range 20_000 {
			at := now.Add(-time.Duration(i+1) * 72 * time.Hour / 20_001).Unix()
			fake.Put(cometchat.Call{SessionID: fmt.Sprintf("v1.us.bench.%06d", i), Type: "audio", Mode: "call",
				ReceiverType: "user", Status: "ended", InitiatedAt: at, StartedAt: at + 2, EndedAt: at + 95,
				AudioMinutes: 3.1, TotalParticipants: 2,
				Participants: []cometchat.Participant{{UID: "a", State: "ended", IsJoined: true}, {UID: "b", State: "ended", IsJoined: true}}})
		}
		srv := fake.Start()

		start := time.Now()
		e := startExporter(b, keyEnv, "--cometchat.app-id=bench", "--cometchat.base-url="+srv.URL+"/v3",
			"--cometchat.backfill=72h", "--cometchat.poll-interval=1s")
		eventually(b, 60*time.Second, func() bool {
			_, m := e.metrics()
			return m.sum("cometchat_calls_total", nil) == 20_000
		}, "20,000 calls counted")
		backfill := time.Since(start)

		time.Sleep(1500 * time.Millisecond) // let the backfill's poll finish
		before := fake.Requests(cometchat.EndpointListCalls) + fake.Requests(cometchat.EndpointGetCall)
		pollsBefore := polls.Load()
		time.Sleep(10 * time.Second) // about ten idle polls
		idle := float64(fake.Requests(cometchat.EndpointListCalls)+fake.Requests(cometchat.EndpointGetCall)-before) /
			float64(polls.Load()-pollsBefore)

		var lat []time.Duration
		for range 50 {
			t0 := time.Now()
			resp, err := http.Get("http://" + e.addr + "/metrics")
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		peak := procStatusKiB(b, e.cmd.Process.Pid, "VmHWM")
		e.stop()
		srv.Close()

		b.ReportMetric(backfill.Seconds(), "s-to-20k")
		b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
		b.ReportMetric(idle, "requests/idle-poll")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "metrics-p50-ms")
	}
}

// procStatusKiB reads a kB field of /proc/PID/status.
func procStatusKiB(b *testing.B, pid int, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("%s not in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkTenApps50k runs the built binary with ten apps, each against
// its own local fake holding 50,000 final calls from the last 72 hours
// (the default --cometchat.dedupe-capacity), backfilled, and measures the
// exporter's resident set once all 500,000 calls are counted and
// remembered: what ten apps at a full dedupe set cost in memory. The
// baseline in the same run is the same ten apps with no calls; the
// difference over 500,000 is the resident set per remembered id.
//
// Run: go test -run XXX -bench TenApps50k -benchtime 1x .
func BenchmarkTenApps50k(b *testing.B) {
	for _, perApp := range []int{0, 50_000} {
		b.Run(fmt.Sprintf("ids-per-app=%d", perApp), func(b *testing.B) {
			for range b.N {
				tenApps(b, perApp)
			}
		})
	}
}

func tenApps(b *testing.B, perApp int) {
	const apps = 10
	dir := b.TempDir()
	keyFile := dir + "/key"
	if err := os.WriteFile(keyFile, []byte(e2eKey), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := "apps:\n"
	now := time.Now()
	for a := range apps {
		fake := cometchattest.New(e2eKey)
		for i := range perApp {
			at := now.Add(-time.Duration(i+1) * 72 * time.Hour / time.Duration(perApp+1)).Unix()
			fake.Put(cometchat.Call{SessionID: fmt.Sprintf("v1.us.app%02d.%08x%012d", a, i*2654435761, i),
				Type: "audio", Mode: "call", ReceiverType: "user", Status: "ended",
				InitiatedAt: at, StartedAt: at + 2, EndedAt: at + 95, AudioMinutes: 3.1, TotalParticipants: 2,
				Participants: []cometchat.Participant{{UID: "a", State: "ended", IsJoined: true}, {UID: "b", State: "ended", IsJoined: true}}})
		}
		srv := fake.Start()
		defer srv.Close()
		cfg += fmt.Sprintf("  - name: app%02d\n    app_id: app%02d\n    api_key_file: %s\n    base_url: %s/v3\n    backfill: 72h\n    poll_interval: 5s\n",
			a, a, keyFile, srv.URL)
	}
	if err := os.WriteFile(dir+"/apps.yml", []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	e := startExporter(b, nil, "--config.file="+dir+"/apps.yml")
	e.waitReady()
	eventually(b, 5*time.Minute, func() bool {
		_, m := e.metrics()
		return m.sum("cometchat_calls_total", nil) == float64(apps*perApp)
	}, "every call counted")
	time.Sleep(10 * time.Second) // idle polls: what stays resident
	_, m := e.metrics()
	b.ReportMetric(float64(procStatusKiB(b, e.cmd.Process.Pid, "VmRSS"))/1024, "RSS-MiB")
	b.ReportMetric(float64(procStatusKiB(b, e.cmd.Process.Pid, "VmHWM"))/1024, "peak-RSS-MiB")
	b.ReportMetric(m.sum("go_memstats_heap_alloc_bytes", nil)/(1<<20), "heap-MiB")
	e.stop()
}
