// Command gen writes the rule files of alerts/ for a selector of your
// scrape job:
//
//	go run ./alerts/gen -selector 'job="my-job"' -out DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/cometchat-exporter/cometchat-exporter/alerts"
)

func main() {
	selector := flag.String("selector", alerts.DefaultSelector, "PromQL label matchers that pick the exporter's series, without braces")
	out := flag.String("out", ".", "directory to write the rule files to")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(2, fmt.Errorf("unexpected arguments %q: give -selector and -out", flag.Args()))
	}
	if err := alerts.CheckSelector(*selector); err != nil {
		fail(2, fmt.Errorf("-selector: %w", err))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(1, fmt.Errorf("-out: %w", err))
	}
	names := make([]string, 0, len(alerts.Files))
	for name := range alerts.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := alerts.Render(alerts.Header(*selector), alerts.Files[name](*selector))
		if err == nil {
			err = os.WriteFile(filepath.Join(*out, name), b, 0o644)
		}
		if err != nil {
			fail(1, err)
		}
		fmt.Println("wrote", filepath.Join(*out, name))
	}
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "gen:", err)
	os.Exit(code)
}
