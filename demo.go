package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/cometchat-exporter/cometchat-exporter/billing"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat/cometchattest"
	"github.com/cometchat-exporter/cometchat-exporter/config"
	"github.com/cometchat-exporter/cometchat-exporter/webhook"
)

// --demo: the fake Calls API of cometchat/cometchattest, served on
// loopback with live traffic, polled like any other app.

// startDemo serves the simulated Calls API on a loopback port, with history
// from before start and live traffic, and returns the app that polls it.
func startDemo(ctx context.Context, logger log.Logger, rate, speed float64, every, backfill time.Duration, misbehave []string) (config.App, *cometchattest.Traffic, error) {
	keyBytes := make([]byte, 16)
	rand.Read(keyBytes)
	key := hex.EncodeToString(keyBytes)
	fake := cometchattest.New(key)
	if err := fake.Misbehave(misbehave...); err != nil {
		return config.App{}, nil, fmt.Errorf("--demo.misbehave: %w", err)
	}
	traffic := cometchattest.NewTraffic(fake, uint64(time.Now().UnixNano()))
	traffic.CallsPerMinute, traffic.Speed = rate, speed
	now := time.Now()
	traffic.SeedHistory(250, now.Add(-24*time.Hour), now.Add(-time.Minute))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return config.App{}, nil, fmt.Errorf("demo: %w", err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	go traffic.Run(ctx, 250*time.Millisecond)
	base := "http://" + ln.Addr().String() + "/v3"
	level.Info(logger).Log("msg", "Demo mode: serving a simulated Calls API", "base_url", base,
		"calls_per_minute", rate, "speed", speed, "misbehave", strings.Join(misbehave, ","))
	if err := cometchat.CheckBaseURL(base, false); err != nil {
		return config.App{}, nil, err
	}
	// A billing period that began ten days ago (the 1st of this month when
	// that day is past the 28th), with a plan, so that the usage moves.
	day := now.AddDate(0, 0, -10).Day()
	if day > 28 {
		day = 1
	}
	plan := billing.Plan{Day: day, Zone: "UTC", Minutes: billing.MinutesCall, IncludedAudio: 20000, IncludedVideo: 5000}
	return config.App{Name: "demo", AppID: "demo", BaseURL: base, APIKey: key, PollInterval: every, Backfill: backfill, Billing: plan}, traffic, nil
}

// demoWebhooks serves the webhook handler on a loopback port of its own
// and makes the demo's traffic post its call events there, as CometChat
// would: a newcomer sees calls counted within a second of their end.
func demoWebhooks(ctx context.Context, logger log.Logger, traffic *cometchattest.Traffic, h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo webhooks: %w", err)
	}
	srv := webhookServer(h)
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	url := "http://" + ln.Addr().String() + webhook.Path
	traffic.SendWebhooks(url, "demo", "", "")
	level.Info(logger).Log("msg", "Demo mode: the simulated API posts its call webhooks", "url", url)
	return nil
}
