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
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/collector"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/cometchat-exporter/cometchat-exporter/config"
	"github.com/cometchat-exporter/cometchat-exporter/fleet"
	"github.com/cometchat-exporter/cometchat-exporter/webhook"
)

const exporterName = "cometchat_exporter"

// defaultAddress is the exporter's default port.
const defaultAddress = ":9877"

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

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

func run(args []string, stderr io.Writer) int {
	app := kingpin.New(exporterName, "Prometheus exporter for the CometChat Calls API.")
	var (
		appID       = app.Flag("cometchat.app-id", "CometChat app id; also the app label.").Envar("COMETCHAT_APP_ID").String()
		region      = app.Flag("cometchat.region", "CometChat region: us, eu or in.").Envar("COMETCHAT_REGION").String()
		baseURL     = app.Flag("cometchat.base-url", "Calls API base URL; overrides the one derived from app id and region.").Envar("COMETCHAT_BASE_URL").String()
		keyFile     = app.Flag("cometchat.api-key-file", "File holding the REST API key. The env var COMETCHAT_API_KEY may hold the key instead; it is never a flag value.").Envar("COMETCHAT_API_KEY_FILE").String()
		onBehalfOf  = app.Flag("cometchat.on-behalf-of", "Optional uid sent as onBehalfOf.").String()
		interval    = app.Flag("cometchat.poll-interval", "Time between polls of the API.").Default("30s").Duration()
		backfill    = app.Flag("cometchat.backfill", "At the first start, also count final calls initiated within this window.").Default("0s").Duration()
		timeout     = app.Flag("cometchat.timeout", "Timeout of each API request.").Default("10s").Duration()
		budget      = app.Flag("cometchat.max-requests-per-minute", "Client-side request budget per app, per minute (0: none); bursts may use a quarter of it at once. CometChat allows 20,000/min per app.").Default("2000").Int()
		overlap     = app.Flag("cometchat.overlap", "How far behind the newest call seen each poll re-reads, to catch calls listed late (later ones are found through the list total).").Default("2m").Duration()
		capacity    = app.Flag("cometchat.dedupe-capacity", "Session ids of counted calls kept per app to count each call once.").Default("50000").Int()
		insecure    = app.Flag("cometchat.allow-insecure-http", "Allow a plain-http base URL to a non-loopback host (the key travels in clear).").Bool()
		configFile  = app.Flag("config.file", "YAML file listing several apps; replaces the single-app flags.").String()
		shard       = app.Flag("config.shard", "INDEX/COUNT: poll only the apps of --config.file whose name hashes to INDEX, for sharding apps over COUNT replicas.").String()
		stateFile   = app.Flag("state.file", "File where counters and scan state persist across restarts (per app: FILE.NAME with --config.file).").String()
		demo        = app.Flag("demo", "Run a built-in simulated Calls API with live traffic and export it as app \"demo\".").Bool()
		demoRate    = app.Flag("demo.calls-per-minute", "Mean rate of new calls in --demo.").Default("90").Float64()
		demoSpeed   = app.Flag("demo.speed", "Speed-up of ringing and talking times in --demo.").Default("2").Float64()
		demoBad     = app.Flag("demo.misbehave", "Comma-separated ways the --demo API departs from the reference: "+strings.Join(cometchattest.MisbehaviourNames(), ", ")+" (see docs/anomalies.md).").String()
		metricsPath = app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		noExporter  = app.Flag("web.disable-exporter-metrics", "Exclude Go runtime and process metrics from /metrics.").Bool()
		logLevel    = app.Flag("log.level", "Only log messages with the given severity or above: debug, info, warn, error.").Default("info").Enum("debug", "info", "warn", "error")
		logFormat   = app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").Enum("logfmt", "json")
		hookAddr    = app.Flag("webhook.listen-address", "Address of a listener for CometChat's call webhooks at "+webhook.Path+" (off when empty). Off loopback it needs basic_auth_users in --webhook.config.file.").String()
		hookConfig  = app.Flag("webhook.config.file", "exporter-toolkit web config (TLS, basic_auth_users) of the webhook listener.").String()
		peerURL     = app.Flag("webhook.peer-url", "With --config.shard and --webhook.listen-address: the webhook URL of each shard, with "+webhook.ShardPlaceholder+" for its index (e.g. http://cometchat-exporter-"+webhook.ShardPlaceholder+".cometchat-exporter:9097/webhook); webhooks for the apps of other shards are forwarded there.").String()
		toolkit     = kingpinflag.AddFlags(app, defaultAddress)
	)
	intervalSet := false
	app.GetFlag("cometchat.poll-interval").IsSetByUser(&intervalSet)
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", exporterName, err)
		return 2
	}

	logger := newLogger(stderr, *logLevel, *logFormat)
	level.Info(logger).Log("msg", "Starting "+exporterName, "version", version.Info())
	level.Info(logger).Log("msg", "Build context", "build_context", version.BuildContext())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for _, check := range []struct {
		bad bool
		msg string
	}{
		{*interval <= 0, fmt.Sprintf("--cometchat.poll-interval must be positive, got %s", *interval)},
		{*backfill < 0, fmt.Sprintf("--cometchat.backfill must not be negative, got %s", *backfill)},
		{*timeout <= 0, fmt.Sprintf("--cometchat.timeout must be positive, got %s", *timeout)},
		{*overlap <= 0, fmt.Sprintf("--cometchat.overlap must be positive, got %s", *overlap)},
		{*capacity <= 0, fmt.Sprintf("--cometchat.dedupe-capacity must be positive, got %d", *capacity)},
		{*budget < 0, fmt.Sprintf("--cometchat.max-requests-per-minute must not be negative, got %d", *budget)},
		{*demoRate <= 0, fmt.Sprintf("--demo.calls-per-minute must be positive, got %g", *demoRate)},
		{*demoSpeed <= 0, fmt.Sprintf("--demo.speed must be positive, got %g", *demoSpeed)},
		{!validTelemetryPath(*metricsPath), fmt.Sprintf("--web.telemetry-path must be a path starting with / other than %s, got %q",
			strings.Join(reservedPaths, ", "), *metricsPath)},
	} {
		if check.bad {
			return fail(logger, errors.New(check.msg))
		}
	}
	if err := checkWebhookListener(*hookAddr, *hookConfig); err != nil {
		return fail(logger, err)
	}

	shardIndex, shardCount, err := config.ParseShard(*shard)
	if err != nil {
		return fail(logger, err)
	}
	if err := checkPeerURL(*peerURL, *hookAddr, shardCount); err != nil {
		return fail(logger, err)
	}
	// A state file that cannot be written would make every restart a
	// silent first start: refuse it now.
	if *stateFile != "" {
		if err := accountant.CheckStateFile(*stateFile); err != nil {
			return fail(logger, fmt.Errorf("--state.file: %w", err))
		}
	}
	// What to poll: the demo's fake API, a config file, or the flags.
	var demoTraffic *cometchattest.Traffic
	loadApps := func() ([]config.App, error) {
		if *configFile != "" {
			return config.LoadFile(*configFile, config.Defaults{PollInterval: *interval, AllowInsecure: *insecure})
		}
		a, err := config.FromFlags(config.Flags{AppID: *appID, Region: *region, BaseURL: *baseURL,
			APIKeyFile: *keyFile, APIKeyEnv: os.Getenv("COMETCHAT_API_KEY"), OnBehalfOf: *onBehalfOf,
			PollInterval: *interval, Backfill: *backfill, AllowInsecure: *insecure})
		return []config.App{a}, err
	}
	if *demo {
		every := *interval
		if !intervalSet {
			every = 2 * time.Second
		}
		var misbehave []string
		if *demoBad != "" {
			misbehave = strings.Split(*demoBad, ",")
		}
		demoApp, traffic, err := startDemo(ctx, logger, *demoRate, *demoSpeed, every, *backfill, misbehave)
		if err != nil {
			return fail(logger, err)
		}
		demoTraffic = traffic
		loadApps = func() ([]config.App, error) { return []config.App{demoApp}, nil }
	}
	apps, err := loadApps()
	if err != nil {
		return fail(logger, err)
	}

	// Per-app metrics are rendered by each poller after its poll (see
	// collector.Exposition); reg holds the exporter-wide ones.
	reg := prometheus.NewRegistry()
	exposition := collector.NewExposition()
	settings := fleet.Settings{
		Timeout: *timeout, MaxRequestsPerMinute: *budget, Overlap: *overlap, Capacity: *capacity,
		StateFile: *stateFile, PerAppState: *configFile != "", Logger: logger,
		UserAgent: exporterName + "/" + version.Version,
		OnPublish: exposition.Update, Forget: exposition.Forget,
	}
	if *hookAddr != "" || demoTraffic != nil {
		settings.OnHintCounted = webhookLatency(reg)
	}
	pollers := fleet.New(ctx, settings)
	defer pollers.Stop()
	// Every replica loads all the apps, polls its shard of them and
	// forwards webhooks for the others.
	var forwarder *webhook.Forwarder
	if *peerURL != "" {
		forwarder = webhook.NewForwarder(shardIndex, *peerURL, reg, logger)
	}
	apply := func(all []config.App) error {
		if err := pollers.Apply(config.Shard(all, shardIndex, shardCount)); err != nil {
			return err
		}
		if forwarder != nil {
			forwarder.SetOwners(shardOwners(all, shardIndex, shardCount))
		}
		return nil
	}
	if err := apply(apps); err != nil {
		return fail(logger, err)
	}
	reload := newReloader(reg, logger, loadApps, apply)

	reg.MustRegister(versioncollector.NewCollector(exporterName))
	if !*noExporter {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	mux := http.NewServeMux()
	mux.Handle(*metricsPath, exposition.Handler(reg, func(err error) {
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
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name: "CometChat Exporter", Description: "Prometheus exporter for the CometChat Calls API",
			Version: version.Info(), Profiling: "false", // no /debug/pprof handlers are served
			Links: []web.LandingLinks{{Address: *metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"}, {Address: "/-/ready", Text: "Readiness"}},
		})
		if err != nil {
			return fail(logger, err)
		}
		mux.Handle("/", landing)
	}

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 2)
	go func() { serveErr <- web.ListenAndServe(srv, toolkit, slogFor(logger)) }()
	hookHandler := webhook.NewHandler(pollers, reg, logger)
	if forwarder != nil {
		hookHandler.ForwardWith(forwarder)
	}
	hooks := webhookServer(hookHandler)
	if demoTraffic != nil {
		if err := demoWebhooks(ctx, logger, demoTraffic, hookHandler); err != nil {
			return fail(logger, err)
		}
	}
	if *hookAddr != "" {
		go func() { serveErr <- web.ListenAndServe(hooks, webhookFlags(*hookAddr, *hookConfig), slogFor(logger)) }()
	}

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
			shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
			srv.Shutdown(shutdown)
			hooks.Shutdown(shutdown)
			done()
			cancel()
			pollers.Stop()
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
