package main

import (
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/version"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
	"github.com/cometchat-exporter/cometchat-exporter/alerts"
	"github.com/cometchat-exporter/cometchat-exporter/dashboards"
)

// The landing page: what a new user opens first. Plain HTML rendered on
// the server from the apps' last snapshots, no JavaScript.

// appRow is one app on the landing page.
type appRow struct {
	Name, LastPoll, Interval string
	Up, Persisted            bool
	Counted, Anomalies       uint64
	Tracked                  int
}

func appRows(snaps []*accountant.Snapshot, now time.Time) []appRow {
	rows := make([]appRow, 0, len(snaps))
	for _, s := range snaps {
		r := appRow{Name: s.App, Up: s.Up, Tracked: s.Tracked, Interval: s.Interval.String(),
			Persisted: s.State != nil && !s.State.Failing, LastPoll: "never"}
		if !s.LastSuccess.IsZero() {
			r.LastPoll = now.Sub(s.LastSuccess).Round(time.Second).String() + " ago"
		}
		for _, t := range s.Totals {
			for _, n := range t.Calls {
				r.Counted += n
			}
		}
		for _, n := range s.API.Anomalies {
			r.Anomalies += n
		}
		rows = append(rows, r)
	}
	return rows
}

var landingTemplate = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>CometChat Exporter</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .3em .8em; text-align: left; }
td.num { text-align: right; }
.up { color: #1a7f37; } .down { color: #cf222e; font-weight: bold; }
</style>
</head>
<body>
<h1>CometChat Exporter</h1>
<p>Prometheus exporter for the CometChat Calls API. Version {{.Version}}.</p>
<h2>Apps</h2>
{{if .Apps}}<table>
<tr><th>App</th><th>Last poll</th><th>Last successful poll</th><th>Poll interval</th><th>Calls counted</th><th>Calls in progress</th><th>API anomalies</th><th>State persisted</th></tr>
{{range .Apps}}<tr><td>{{.Name}}</td><td class="{{if .Up}}up{{else}}down{{end}}">{{if .Up}}up{{else}}down{{end}}</td><td>{{.LastPoll}}</td><td>{{.Interval}}</td><td class="num">{{.Counted}}</td><td class="num">{{.Tracked}}</td><td class="num">{{.Anomalies}}</td><td>{{if .Persisted}}yes{{else}}no: a restart starts over (--state.file){{end}}</td></tr>
{{end}}</table>{{else}}<p>No app has been polled yet.</p>{{end}}
<h2>Links</h2>
<ul>
<li><a href="{{.MetricsPath}}">Metrics</a></li>
<li><a href="/-/healthy">Health</a> and <a href="/-/ready">readiness</a></li>
{{range .Dashboards}}<li>Grafana dashboard <a href="/dashboards/{{.}}">{{.}}</a> (import or provision it as it is)</li>
{{end}}<li><a href="{{.Runbook}}">Runbook of the alerts</a></li>
</ul>
</body>
</html>
`))

// landingHandler serves the landing page at / and the dashboards at
// /dashboards/; anything else is 404.
func landingHandler(metricsPath string, snapshots func() []*accountant.Snapshot) http.Handler {
	names, _ := fs.Glob(dashboards.JSON, "*.json")
	sort.Strings(names)
	mux := http.NewServeMux()
	mux.Handle("/dashboards/", http.StripPrefix("/dashboards/", http.FileServerFS(dashboards.JSON)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		landingTemplate.Execute(w, map[string]any{
			"Version": version.Version, "Apps": appRows(snapshots(), time.Now()), "MetricsPath": metricsPath,
			"Dashboards": names, "Runbook": alerts.RunbookURL,
		})
	})
	return mux
}
