package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// newLogger returns a go-kit logger writing lvl and above to w.
func newLogger(w io.Writer, lvl, format string) log.Logger {
	var l log.Logger
	if format == "json" {
		l = log.NewJSONLogger(log.NewSyncWriter(w))
	} else {
		l = log.NewLogfmtLogger(log.NewSyncWriter(w))
	}
	allow := map[string]level.Option{"debug": level.AllowDebug(), "info": level.AllowInfo(),
		"warn": level.AllowWarn(), "error": level.AllowError()}[lvl]
	l = level.NewFilter(l, allow)
	return log.With(l, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)
}

// slogFor adapts a go-kit logger to the *slog.Logger that exporter-toolkit
// takes, so that the whole exporter logs through one logger and format.
func slogFor(l log.Logger) *slog.Logger { return slog.New(kitHandler{l: l}) }

type kitHandler struct {
	l     log.Logger
	attrs []any
}

func (h kitHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h kitHandler) Handle(_ context.Context, r slog.Record) error {
	kv := append([]any{"msg", r.Message}, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		kv = append(kv, a.Key, a.Value.Any())
		return true
	})
	lg := level.Info(h.l)
	switch {
	case r.Level >= slog.LevelError:
		lg = level.Error(h.l)
	case r.Level >= slog.LevelWarn:
		lg = level.Warn(h.l)
	case r.Level < slog.LevelInfo:
		lg = level.Debug(h.l)
	}
	return lg.Log(kv...)
}

func (h kitHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := kitHandler{l: h.l, attrs: append([]any{}, h.attrs...)}
	for _, a := range as {
		n.attrs = append(n.attrs, a.Key, a.Value.Any())
	}
	return n
}

func (h kitHandler) WithGroup(string) slog.Handler { return h }
