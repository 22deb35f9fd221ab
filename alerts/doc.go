// Package alerts holds the Prometheus recording and alerting rules for
// cometchat-exporter (*.yml) and their promtool unit tests (tests/). The Go
// tests here run promtool and check the rules' conventions.
package alerts
