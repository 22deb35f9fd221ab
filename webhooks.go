package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"gopkg.in/yaml.v3"

	"github.com/cometchat-exporter/cometchat-exporter/config"
	"github.com/cometchat-exporter/cometchat-exporter/webhook"
)

// --webhook.listen-address: CometChat's call webhooks, on a listener of
// their own, since CometChat must reach it from the internet while
// /metrics usually stays private.

// checkWebhookListener refuses a webhook listener that anyone on the
// network could feed: off loopback, the web config must set
// basic_auth_users (what CometChat's webhook settings send).
func checkWebhookListener(addr, configFile string) error {
	if addr == "" {
		if configFile != "" {
			return errors.New("--webhook.config.file is set but --webhook.listen-address is not")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--webhook.listen-address %q: %w", addr, err)
	}
	users := 0
	if configFile != "" {
		if err := web.Validate(configFile); err != nil {
			return fmt.Errorf("--webhook.config.file %s: %w", configFile, err)
		}
		b, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("--webhook.config.file: %w", err)
		}
		var c struct {
			Users map[string]string `yaml:"basic_auth_users"`
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("--webhook.config.file %s: %w", configFile, err)
		}
		users = len(c.Users)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if users == 0 && !loopback {
		return fmt.Errorf("--webhook.listen-address %q is not a loopback address: set basic_auth_users in --webhook.config.file, "+
			"with the credentials set in CometChat's webhook settings, so that only CometChat can post calls", addr)
	}
	return nil
}

// checkPeerURL refuses --webhook.peer-url where it cannot work, and its
// absence where webhooks would reach replicas that do not poll their app.
func checkPeerURL(peerURL, hookAddr string, shards int) error {
	switch {
	case peerURL == "" && hookAddr != "" && shards > 1:
		return errors.New("--config.shard with --webhook.listen-address needs --webhook.peer-url: a webhook reaching this replica " +
			"for an app of another shard must be forwarded to it")
	case peerURL == "":
		return nil
	case hookAddr == "":
		return errors.New("--webhook.peer-url is set but --webhook.listen-address is not")
	case shards <= 1:
		return errors.New("--webhook.peer-url is set but --config.shard does not split the apps over several replicas")
	}
	if err := webhook.ParsePeerURL(peerURL); err != nil {
		return fmt.Errorf("--webhook.peer-url: %w", err)
	}
	return nil
}

// shardOwners are the apps of all but shard self, by app id and shard.
func shardOwners(all []config.App, self, count int) webhook.Owners {
	o := webhook.Owners{}
	for _, a := range all {
		shard := config.ShardOf(a.Name, count)
		if shard == self {
			continue
		}
		if o[a.AppID] == nil {
			o[a.AppID] = map[int][]string{}
		}
		o[a.AppID][shard] = append(o[a.AppID][shard], a.Name)
	}
	return o
}

// webhookLatency is the time from a webhook to its call being counted.
func webhookLatency(reg prometheus.Registerer) func(app string, d time.Duration) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cometchat_exporter_webhook_count_latency_seconds",
		Help:    "Time from a webhook's arrival to the call it named being counted.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"app"})
	reg.MustRegister(h)
	return func(app string, d time.Duration) { h.WithLabelValues(app).Observe(d.Seconds()) }
}

// webhookServer is the listener's server, serving only webhook.Path.
func webhookServer(h http.Handler) *http.Server {
	mux := http.NewServeMux()
	mux.Handle(webhook.Path, h)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
}

func webhookFlags(addr, configFile string) *web.FlagConfig {
	systemd := false
	return &web.FlagConfig{WebListenAddresses: &[]string{addr}, WebSystemdSocket: &systemd, WebConfigFile: &configFile}
}
