package main

import (
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cometchat-exporter/cometchat-exporter/config"
)

// newReloader returns the function SIGHUP and POST /-/reload call: load the
// configuration, apply it (all or nothing), and report the outcome in
// metrics and the log.
func newReloader(reg prometheus.Registerer, logger log.Logger, load func() ([]config.App, error), apply func([]config.App) error) func() error {
	m := newReloadMetrics(reg)
	m.record(nil)
	return func() error {
		apps, err := load()
		if err == nil {
			err = apply(apps)
		}
		m.record(err)
		if err != nil {
			level.Error(logger).Log("msg", "Reload failed; the previous configuration stays", "err", err)
		} else {
			level.Info(logger).Log("msg", "Reloaded configuration", "apps", len(apps))
		}
		return err
	}
}

// reloadMetrics report the outcome of configuration reloads.
type reloadMetrics struct {
	ok, ts prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		ok: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cometchat_exporter_config_last_reload_successful",
			Help: "1 if the last configuration load or reload succeeded.",
		}),
		ts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cometchat_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load or reload.",
		}),
	}
	reg.MustRegister(m.ok, m.ts)
	return m
}

func (m *reloadMetrics) record(err error) {
	if err != nil {
		m.ok.Set(0)
		return
	}
	m.ok.Set(1)
	m.ts.Set(float64(time.Now().UnixNano()) / 1e9)
}
