package dashboards

import "embed"

// JSON holds the committed dashboards, served by the exporter's landing
// page at /dashboards/NAME.json.
//
//go:embed *.json
var JSON embed.FS
