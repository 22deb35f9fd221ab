package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/billing"
	"github.com/cometchat-exporter/cometchat-exporter/collector"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/cometchat-exporter/cometchat-exporter/config"
	"github.com/cometchat-exporter/cometchat-exporter/webhook"
)

// options are the command line, parsed.
type options struct {
	appID, region, baseURL, keyFile, onBehalfOf string
	caFile, command                             string // command: run or check
	billing                                     billing.Settings
	interval, backfill, timeout, overlap        time.Duration
	intervalSet, backfillSet                    bool
	budget, capacity                            int
	insecure                                    bool
	configFile, shard, stateFile                string
	shardIndex, shardCount                      int
	demo                                        bool
	demoRate, demoSpeed                         float64
	demoMisbehave                               string
	metricsPath                                 string
	noExporterMetrics                           bool
	dropLabels                                  collector.LabelDrop
	histograms                                  collector.HistogramMode
	logLevel, logFormat                         string
	hookAddr, hookConfig, peerURL               string
	toolkit                                     *web.FlagConfig
	keyInFlag                                   bool
	keyEnvSet                                   bool // COMETCHAT_API_KEY is set
	getenv                                      func(string) string
	applicationFlagsUsed, singleAppFlagsUsed    []string
	configFileFlagsUsed                         []string
}

// parseFlags reads args. A value that does not parse is an error naming
// the flag with a valid example.
func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (*options, error) {
	o := &options{getenv: getenv}
	app := kingpin.New(exporterName, "Prometheus exporter for the CometChat Calls API.")
	app.Flag("cometchat.app-id", "CometChat app id; also the app label.").Envar("COMETCHAT_APP_ID").StringVar(&o.appID)
	app.Flag("cometchat.region", "CometChat region: us, eu or in.").Envar("COMETCHAT_REGION").StringVar(&o.region)
	app.Flag("cometchat.base-url", "Calls API base URL; overrides the one derived from app id and region.").Envar("COMETCHAT_BASE_URL").StringVar(&o.baseURL)
	app.Flag("cometchat.api-key-file", "File holding the REST API key. The env var COMETCHAT_API_KEY may hold the key instead; it is never a flag value.").Envar("COMETCHAT_API_KEY_FILE").StringVar(&o.keyFile)
	app.Flag("cometchat.api-key", "Refused: a key in a flag shows in ps and shell history.").Hidden().PreAction(func(*kingpin.ParseContext) error {
		o.keyInFlag = true
		return nil
	}).String()
	app.Flag("cometchat.on-behalf-of", "Optional uid sent as onBehalfOf.").StringVar(&o.onBehalfOf)
	app.Flag("cometchat.ca-file", "PEM file of CA certificates to trust besides the system's, for a TLS-intercepting proxy or a private endpoint (ca_file in --config.file).").Envar("COMETCHAT_CA_FILE").StringVar(&o.caFile)
	durationFlag(app, "cometchat.poll-interval", "Time between polls of the API.", "30s", "1m", &o.interval).IsSetByUser(&o.intervalSet)
	durationFlag(app, "cometchat.backfill", "At the first start, also count final calls initiated within this window (--demo: 24h, its simulated last day, unless set).", "0s", "72h", &o.backfill).IsSetByUser(&o.backfillSet)
	durationFlag(app, "cometchat.timeout", "Timeout of each API request.", "10s", "15s", &o.timeout)
	intFlag(app, "cometchat.max-requests-per-minute", "Client-side request budget per app, per minute (0: none); bursts may use a quarter of it at once. CometChat allows 20,000/min per app.", "2000", "1000", &o.budget)
	durationFlag(app, "cometchat.overlap", "How far behind the newest call seen each poll re-reads, to catch calls listed late (later ones are found through the list total). While the list total accounts exactly for what polls find, polls between sweeps re-read 10s instead.", "2m", "5m", &o.overlap)
	intFlag(app, "cometchat.dedupe-capacity", "Session ids of counted calls kept per app to count each call once.", "50000", "100000", &o.capacity)
	app.Flag("billing.day", "Day of the month (1-28) the billing period starts, at midnight in --billing.time-zone; setting any --billing flag keeps the period's minutes (default 1).").StringVar(&o.billing.Day)
	app.Flag("billing.time-zone", "IANA time zone of the billing period's boundaries, e.g. Europe/Berlin (default UTC).").StringVar(&o.billing.Zone)
	app.Flag("billing.minutes", "Which minutes count toward the plan: call (totalAudioMinutes and totalVideoMinutes, the default) or participant (summed over participants).").StringVar(&o.billing.Minutes)
	app.Flag("billing.included-audio-minutes", "Audio minutes the plan includes per period.").StringVar(&o.billing.IncludedAudio)
	app.Flag("billing.included-video-minutes", "Video minutes the plan includes per period.").StringVar(&o.billing.IncludedVideo)
	app.Flag("billing.included-minutes", "Minutes the plan includes per period in a pool shared by audio and video.").StringVar(&o.billing.IncludedTotal)
	app.Flag("cometchat.allow-insecure-http", "Allow a plain-http base URL to a non-loopback host (the key travels in clear).").BoolVar(&o.insecure)
	app.Flag("config.file", "YAML file listing several apps; replaces the single-app flags.").StringVar(&o.configFile)
	app.Flag("config.shard", "INDEX/COUNT: poll only the apps of --config.file whose name hashes to INDEX, for sharding apps over COUNT replicas.").StringVar(&o.shard)
	app.Flag("state.file", "File where counters and scan state persist across restarts (per app: FILE.NAME with --config.file).").StringVar(&o.stateFile)
	app.Flag("demo", "Run a built-in simulated Calls API with live traffic and export it as app \"demo\".").BoolVar(&o.demo)
	floatFlag(app, "demo.calls-per-minute", "Mean rate of new calls in --demo.", "90", "600", &o.demoRate)
	floatFlag(app, "demo.speed", "Speed-up of ringing and talking times in --demo.", "2", "10", &o.demoSpeed)
	app.Flag("demo.misbehave", "Comma-separated ways the --demo API departs from the reference: "+strings.Join(cometchattest.MisbehaviourNames(), ", ")+" (see docs/anomalies.md).").StringVar(&o.demoMisbehave)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.metricsPath)
	app.Flag("web.disable-exporter-metrics", "Exclude Go runtime and process metrics from /metrics.").BoolVar(&o.noExporterMetrics)
	app.Flag("collector.histograms", "How the call histograms are served: classic (buckets as series, every format), native (native histograms, buckets in protobuf only) or both (see docs/scaling.md).").
		Default("classic").SetValue(&parsedValue[collector.HistogramMode]{v: &o.histograms, name: "collector.histograms",
		want: "one of " + strings.Join(collector.HistogramModes, ", "), example: "both", parse: collector.ParseHistogramMode})
	app.Flag("collector.drop-labels", "Call labels to leave out of /metrics, comma-separated: "+strings.Join(collector.DroppableLabels, ", ")+
		"; the series that differ only in them are summed into one (see docs/scaling.md).").
		SetValue(&parsedValue[collector.LabelDrop]{v: &o.dropLabels, name: "collector.drop-labels",
			want: "a comma-separated list of " + strings.Join(collector.DroppableLabels, ", "), example: "mode,receiver_type", parse: collector.ParseLabelDrop})
	enumFlag(app, "log.level", "Only log messages with the given severity or above: debug, info, warn, error.", "info", &o.logLevel, "debug", "info", "warn", "error")
	enumFlag(app, "log.format", "Log format: logfmt or json.", "logfmt", &o.logFormat, "logfmt", "json")
	app.Flag("webhook.listen-address", "Address of a listener for CometChat's call webhooks at "+webhook.Path+" (off when empty). Off loopback it needs basic_auth_users in --webhook.config.file.").StringVar(&o.hookAddr)
	app.Flag("webhook.config.file", "exporter-toolkit web config (TLS, basic_auth_users) of the webhook listener.").StringVar(&o.hookConfig)
	app.Flag("webhook.peer-url", "With --config.shard and --webhook.listen-address: the webhook URL of each shard, with "+webhook.ShardPlaceholder+" for its index (e.g. http://cometchat-exporter-"+webhook.ShardPlaceholder+".cometchat-exporter:9878/webhook); webhooks for the apps of other shards are forwarded there.").StringVar(&o.peerURL)
	o.toolkit = kingpinflag.AddFlags(app, defaultAddress)
	app.Command("run", "Run the exporter (the default).").Default()
	app.Command("check", "Read each configured app's Calls API once, say what it found, and exit 0 only if the exporter will count every call.")
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	cmd, err := app.Parse(args)
	if err != nil {
		return nil, err
	}
	o.command = cmd
	o.keyEnvSet = strings.TrimSpace(getenv("COMETCHAT_API_KEY")) != ""
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"--cometchat.app-id (or COMETCHAT_APP_ID)", o.appID != ""},
		{"--cometchat.region (or COMETCHAT_REGION)", o.region != ""},
		{"--cometchat.base-url (or COMETCHAT_BASE_URL)", o.baseURL != ""},
		{"--cometchat.api-key-file (or COMETCHAT_API_KEY_FILE)", o.keyFile != ""},
		{"COMETCHAT_API_KEY", o.keyEnvSet},
		{"--cometchat.on-behalf-of", o.onBehalfOf != ""},
		{"--cometchat.ca-file (or COMETCHAT_CA_FILE)", o.caFile != ""},
		{"--billing.* (billing_day, billing_time_zone, billing_minutes, included_*_minutes in the file)", o.billing != billing.Settings{}},
	} {
		if f.set {
			o.singleAppFlagsUsed = append(o.singleAppFlagsUsed, f.name)
		}
	}
	if o.backfill != 0 {
		o.applicationFlagsUsed = append(o.applicationFlagsUsed, "--cometchat.backfill")
	}
	if o.shard != "" {
		o.configFileFlagsUsed = append(o.configFileFlagsUsed, "--config.shard")
	}
	return o, nil
}

// check refuses options that cannot work together, before anything
// starts. Each message names the flags concerned.
func (o *options) check() error {
	if o.keyInFlag {
		return errors.New("--cometchat.api-key is not accepted: a key in a flag shows in ps and shell history; " +
			"set the env var COMETCHAT_API_KEY, or put the key in a file readable only by the exporter and give --cometchat.api-key-file")
	}
	if err := flagConflicts(o.configFile != "", o.demo, o.singleAppFlagsUsed, o.applicationFlagsUsed, o.configFileFlagsUsed); err != nil {
		return err
	}
	for _, c := range []struct {
		bad bool
		msg string
	}{
		{o.interval <= 0, fmt.Sprintf("--cometchat.poll-interval must be positive, got %s", o.interval)},
		{o.backfill < 0, fmt.Sprintf("--cometchat.backfill must not be negative, got %s", o.backfill)},
		{o.timeout <= 0, fmt.Sprintf("--cometchat.timeout must be positive, got %s", o.timeout)},
		{o.overlap <= 0, fmt.Sprintf("--cometchat.overlap must be positive, got %s", o.overlap)},
		{o.capacity <= 0, fmt.Sprintf("--cometchat.dedupe-capacity must be positive, got %d", o.capacity)},
		{o.budget < 0, fmt.Sprintf("--cometchat.max-requests-per-minute must not be negative, got %d", o.budget)},
		{o.demoRate <= 0, fmt.Sprintf("--demo.calls-per-minute must be positive, got %g", o.demoRate)},
		{o.demoSpeed <= 0, fmt.Sprintf("--demo.speed must be positive, got %g", o.demoSpeed)},
		{!validTelemetryPath(o.metricsPath), fmt.Sprintf("--web.telemetry-path must be a path starting with / other than %s, got %q",
			strings.Join(reservedPaths, ", "), o.metricsPath)},
	} {
		if c.bad {
			return errors.New(c.msg)
		}
	}
	if err := checkWebhookListener(o.hookAddr, o.hookConfig); err != nil {
		return err
	}
	var err error
	if o.shardIndex, o.shardCount, err = config.ParseShard(o.shard); err != nil {
		return err
	}
	if err := checkPeerURL(o.peerURL, o.hookAddr, o.shardCount); err != nil {
		return err
	}
	// A state file that cannot be written would make every restart a
	// silent first start: refuse it now.
	if o.stateFile != "" {
		if err := accountant.CheckStateFile(o.stateFile); err != nil {
			return fmt.Errorf("--state.file: %w", err)
		}
	}
	return nil
}

// flagConflicts refuses flags that the chosen source of apps would
// ignore: a config file or the demo replaces the single-app flags, the
// demo replaces a config file, and only a config file can be sharded.
func flagConflicts(configFile, demo bool, singleApp, appFlags, configFileFlags []string) error {
	switch {
	case demo && configFile:
		return errors.New("--demo and --config.file both given: the demo polls its own simulated app; drop one")
	case demo && len(singleApp) > 0:
		return fmt.Errorf("--demo and %s both given: the demo polls its own simulated app and would ignore %s; drop one",
			singleApp[0], strings.Join(singleApp, ", "))
	case configFile && len(singleApp) > 0:
		return fmt.Errorf("--config.file and %s both given: the file lists the apps and would ignore %s; "+
			"set them in the file (app_id, region, base_url, api_key_file, on_behalf_of, ca_file) or drop --config.file",
			singleApp[0], strings.Join(singleApp, ", "))
	case configFile && len(appFlags) > 0:
		return fmt.Errorf("--config.file and %s both given: set backfill per app in the file", appFlags[0])
	case !configFile && len(configFileFlags) > 0:
		return fmt.Errorf("%s needs --config.file: it picks this replica's share of the file's apps", configFileFlags[0])
	}
	return nil
}

// parsedValue is a flag value whose parse error names the flag and shows
// a valid example, e.g. "--cometchat.poll-interval: want a duration with a
// unit, e.g. --cometchat.poll-interval=1m, got "5"".
type parsedValue[T any] struct {
	v                   *T
	name, want, example string
	parse               func(string) (T, error)
}

func (p *parsedValue[T]) Set(s string) error {
	x, err := p.parse(s)
	if err != nil {
		return fmt.Errorf("--%s: want %s, e.g. --%s=%s, got %q", p.name, p.want, p.name, p.example, s)
	}
	*p.v = x
	return nil
}

func (p *parsedValue[T]) String() string { return fmt.Sprint(*p.v) }

func durationFlag(app *kingpin.Application, name, help, def, example string, v *time.Duration) *kingpin.FlagClause {
	f := app.Flag(name, help).Default(def)
	f.SetValue(&parsedValue[time.Duration]{v: v, name: name, want: "a duration with a unit (ms, s, m, h)", example: example, parse: time.ParseDuration})
	return f
}

func intFlag(app *kingpin.Application, name, help, def, example string, v *int) {
	app.Flag(name, help).Default(def).SetValue(&parsedValue[int]{v: v, name: name, want: "a whole number", example: example, parse: strconv.Atoi})
}

func floatFlag(app *kingpin.Application, name, help, def, example string, v *float64) {
	app.Flag(name, help).Default(def).SetValue(&parsedValue[float64]{v: v, name: name, want: "a number", example: example,
		parse: func(s string) (float64, error) {
			f, err := strconv.ParseFloat(s, 64)
			if err == nil && (math.IsInf(f, 0) || math.IsNaN(f)) {
				err = errors.New("not finite")
			}
			return f, err
		}})
}

func enumFlag(app *kingpin.Application, name, help, def string, v *string, values ...string) {
	app.Flag(name, help).Default(def).SetValue(&parsedValue[string]{v: v, name: name, want: "one of " + strings.Join(values, ", "), example: def,
		parse: func(s string) (string, error) {
			for _, x := range values {
				if s == x {
					return s, nil
				}
			}
			return "", errors.New("not one of them")
		}})
}
