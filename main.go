// Command cometchat_exporter is a Prometheus exporter for the CometChat
// Calls API. A background poller per app reads the API and keeps exact
// counters; /metrics is served from memory and never waits on the API.
//
// Data flow: cometchat (client) -> accountant (poller + ledger) ->
// collector -> /metrics. This file only wires them together.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"

	"github.com/cometchat-exporter/cometchat-exporter/check"
	"github.com/cometchat-exporter/cometchat-exporter/collector"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/cometchat-exporter/cometchat-exporter/config"
	"github.com/cometchat-exporter/cometchat-exporter/fleet"
	"github.com/cometchat-exporter/cometchat-exporter/webhook"
)

const exporterName = "cometchat_exporter"

// defaultAddress is the exporter's default port.
const defaultAddress = ":9877"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func init() {
	// make build sets the version with -ldflags; go install sets the
	// module's; a plain go build gets "dev" rather than nothing.
	if version.Version == "" {
		version.Version = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version.Version = bi.Main.Version
		}
	}
}

// run is the exporter's start-up, step by step: flags, checks, the
// listeners (bound before any polling, so that a port in use stops
// start-up at once), the apps, their pollers, the HTTP servers, and the
// signal loop.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", exporterName, err)
		return 2
	}
	logger := newLogger(stderr, o.logLevel, o.logFormat)
	level.Info(logger).Log("msg", "Starting "+exporterName, "version", version.Info())
	level.Info(logger).Log("msg", "Build context", "build_context", version.BuildContext())
	if err := o.check(); err != nil {
		return fail(logger, err)
	}
	if o.command == "check" {
		return runCheck(o, logger, stdout)
	}
	metricsListeners, err := bind(o.toolkit, "--web.listen-address", "--web.config.file")
	if err != nil {
		return fail(logger, err)
	}
	var hookListeners []net.Listener
	if o.hookAddr != "" {
		if hookListeners, err = bind(webhookFlags(o.hookAddr, o.hookConfig), "--webhook.listen-address", "--webhook.config.file"); err != nil {
			return fail(logger, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := appSource(ctx, o, logger)
	if err != nil {
		return fail(logger, err)
	}
	apps, err := src.load()
	if err != nil {
		return fail(logger, err)
	}

	// Per-app metrics are rendered by each poller after its poll (see
	// collector.Exposition); reg holds the exporter-wide ones.
	reg := prometheus.NewRegistry()
	exposition := collector.NewExposition()
	exposition.Options = collector.Options{Histograms: o.histograms, DropLabels: o.dropLabels}
	pollers, apply, forwarder := newFleet(ctx, o, logger, reg, exposition, src.demo != nil)
	defer pollers.Stop()
	if err := apply(apps); err != nil {
		return fail(logger, err)
	}
	reload := newReloader(reg, logger, src.load, apply)
	reg.MustRegister(versioncollector.NewCollector(exporterName))
	if !o.noExporterMetrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	srv := metricsServer(o, logger, reg, exposition, pollers, reload)
	hookHandler := webhook.NewHandler(pollers, reg, logger)
	if forwarder != nil {
		hookHandler.ForwardWith(forwarder)
	}
	hooks := webhookServer(hookHandler)
	serveErr := make(chan error, 2)
	go func() { serveErr <- serve(metricsListeners, srv, o.toolkit, logger) }()
	if o.hookAddr != "" {
		go func() { serveErr <- serve(hookListeners, hooks, webhookFlags(o.hookAddr, o.hookConfig), logger) }()
	}
	if src.demo != nil {
		if err := demoWebhooks(ctx, logger, src.demo, hookHandler); err != nil {
			return fail(logger, err)
		}
	}
	return waitForSignals(logger, serveErr, reload, func() {
		shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		srv.Shutdown(shutdown)
		hooks.Shutdown(shutdown)
		cancel()
		pollers.Stop()
	})
}

// runCheck is the check command: the configured apps (all of them, not
// only this shard's) read once, a report on stdout, exit 0 only when
// every app will be counted correctly.
func runCheck(o *options, logger log.Logger, stdout io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, err := appSource(ctx, o, logger)
	if err != nil {
		return fail(logger, err)
	}
	apps, err := src.load()
	if err != nil {
		return fail(logger, err)
	}
	settings := fleet.Settings{Timeout: o.timeout, UserAgent: exporterName + "/" + version.Version}
	client := func(a config.App) (*cometchat.Client, error) { return cometchat.New(fleet.ClientConfig(a, settings)) }
	if !check.Run(ctx, apps, client, stdout) {
		return 1
	}
	return 0
}

// source is where the apps come from: the demo's simulated API, a config
// file, or the single-app flags. load is called at start and on reload.
type source struct {
	load func() ([]config.App, error)
	demo *cometchattest.Traffic // the demo's traffic, with --demo
}

func appSource(ctx context.Context, o *options, logger log.Logger) (source, error) {
	switch {
	case o.demo:
		every := o.interval
		if !o.intervalSet {
			every = 2 * time.Second
		}
		var misbehave []string
		if o.demoMisbehave != "" {
			misbehave = strings.Split(o.demoMisbehave, ",")
		}
		// The demo counts its simulated last day unless told otherwise,
		// so that the counters and the billing row start filled in.
		backfill := o.backfill
		if !o.backfillSet {
			backfill = 24 * time.Hour
		}
		app, traffic, err := startDemo(ctx, logger, o.demoRate, o.demoSpeed, every, backfill, misbehave)
		if err != nil {
			return source{}, err
		}
		return source{load: func() ([]config.App, error) { return []config.App{app}, nil }, demo: traffic}, nil
	case o.configFile != "":
		return source{load: func() ([]config.App, error) {
			return config.LoadFile(o.configFile, config.Defaults{PollInterval: o.interval, AllowInsecure: o.insecure})
		}}, nil
	}
	return source{load: func() ([]config.App, error) {
		a, err := config.FromFlags(config.Flags{AppID: o.appID, Region: o.region, BaseURL: o.baseURL,
			APIKeyFile: o.keyFile, APIKeyEnv: o.getenv("COMETCHAT_API_KEY"), OnBehalfOf: o.onBehalfOf, CAFile: o.caFile, Billing: o.billing,
			PollInterval: o.interval, Backfill: o.backfill, AllowInsecure: o.insecure})
		return []config.App{a}, err
	}}, nil
}

// newFleet returns the pollers and the function that applies a list of
// apps to them (at start and on reload). Every replica loads all the
// apps, polls its shard of them and forwards webhooks for the others.
func newFleet(ctx context.Context, o *options, logger log.Logger, reg prometheus.Registerer, exposition *collector.Exposition, demo bool) (*fleet.Fleet, func([]config.App) error, *webhook.Forwarder) {
	settings := fleet.Settings{
		Timeout: o.timeout, MaxRequestsPerMinute: o.budget, Overlap: o.overlap, Capacity: o.capacity,
		StateFile: o.stateFile, PerAppState: o.configFile != "", Logger: logger,
		UserAgent: exporterName + "/" + version.Version,
		OnPublish: exposition.Update, Forget: exposition.Forget,
	}
	if o.hookAddr != "" || demo {
		settings.OnHintCounted = webhookLatency(reg)
	}
	pollers := fleet.New(ctx, settings)
	var forwarder *webhook.Forwarder
	if o.peerURL != "" {
		forwarder = webhook.NewForwarder(o.shardIndex, o.peerURL, reg, logger)
	}
	apply := func(all []config.App) error {
		if err := pollers.Apply(config.Shard(all, o.shardIndex, o.shardCount)); err != nil {
			return err
		}
		if forwarder != nil {
			forwarder.SetOwners(shardOwners(all, o.shardIndex, o.shardCount))
		}
		return nil
	}
	return pollers, apply, forwarder
}

// metricsServer serves /metrics, the landing page, health, readiness and
// reload.
func metricsServer(o *options, logger log.Logger, reg *prometheus.Registry, exposition *collector.Exposition, pollers *fleet.Fleet, reload func() error) *http.Server {
	mux := http.NewServeMux()
	mux.Handle(o.metricsPath, exposition.Handler(reg, func(err error) {
		level.Error(logger).Log("msg", "Gathering metrics failed", "err", err)
	}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !pollers.Ready() {
			http.Error(w, "Not ready: waiting for the first poll attempt of every app", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "Ready")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "Use POST to reload", http.StatusMethodNotAllowed)
			return
		}
		if err := reload(); err != nil {
			http.Error(w, "Reload failed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "Reloaded")
	})
	if o.metricsPath != "/" {
		mux.Handle("/", landingHandler(o.metricsPath, pollers.Snapshots))
	}
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// waitForSignals reloads on SIGHUP and stops on SIGTERM or SIGINT, or
// when a server fails.
func waitForSignals(logger log.Logger, serveErr <-chan error, reload func() error, stop func()) int {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for {
		select {
		case err := <-serveErr:
			if errors.Is(err, http.ErrServerClosed) {
				return 0
			}
			return fail(logger, err)
		case s := <-signals:
			if s == syscall.SIGHUP {
				reload()
				continue
			}
			level.Info(logger).Log("msg", "Shutting down", "signal", s)
			stop()
			return 0
		}
	}
}

// reservedPaths are served by the exporter itself.
var reservedPaths = []string{"/-/healthy", "/-/ready", "/-/reload"}

// validTelemetryPath reports whether --web.telemetry-path can be served: an
// absolute path that is not one of the exporter's own endpoints.
func validTelemetryPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " ?#") {
		return false
	}
	for _, r := range reservedPaths {
		if p == r {
			return false
		}
	}
	return true
}

func fail(logger log.Logger, err error) int {
	level.Error(logger).Log("msg", "Exiting", "err", err)
	return 1
}
