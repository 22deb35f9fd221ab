// Command testsum reads `go test -json` on stdin and prints what a plain
// `go test` would (each package's result, the output of failed tests),
// then every skipped test with its reason, so that no skip goes by
// unseen. Under CI=true a skip is a failure unless its reason is one of
// the expected ones below (-allow): CI installs every tool the tests need.
//
//	go test -json ./... | go run ./internal/testsum
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type result struct {
	failed, skipped []string
	reasons         map[string]string
	passed          int
	packageFailed   bool
}

func main() {
	allow := flag.String("allow", "no /dev/full on this system", "comma-separated skip reasons that do not fail under CI=true")
	flag.Parse()
	ok := summarize(os.Stdin, os.Stdout, os.Getenv("CI") == "true", strings.Split(*allow, ","))
	if !ok {
		os.Exit(1)
	}
}

// summarize echoes in, prints the skip summary, and reports whether the
// run passed: no failure, and under ci no skip outside allowed.
func summarize(in io.Reader, out io.Writer, ci bool, allowed []string) bool {
	r := result{reasons: map[string]string{}}
	output := map[string]*strings.Builder{} // per test, for failures and reasons
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // not test2json: a build error, say
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output": // the compiler's messages
			fmt.Fprint(out, e.Output)
		case "build-fail":
			r.packageFailed = true
		case "output":
			if e.Test == "" {
				if !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "PASS") {
					fmt.Fprint(out, e.Output) // package results, build and vet errors
				}
				continue
			}
			if output[key] == nil {
				output[key] = &strings.Builder{}
			}
			output[key].WriteString(e.Output)
		case "pass":
			if e.Test != "" {
				r.passed++
			}
		case "fail":
			if e.Test == "" {
				r.packageFailed = true
				continue
			}
			r.failed = append(r.failed, key)
			if b := output[key]; b != nil {
				fmt.Fprint(out, b.String())
			}
		case "skip":
			if e.Test == "" {
				continue // a package without tests
			}
			r.skipped = append(r.skipped, key)
			r.reasons[key] = skipReason(output[key])
		}
		if e.Action != "output" {
			delete(output, key)
		}
	}
	sort.Strings(r.skipped)
	fmt.Fprintf(out, "\n%d tests passed, %d failed, %d skipped\n", r.passed, len(r.failed), len(r.skipped))
	unexpected := 0
	for _, k := range r.skipped {
		mark := ""
		if ci && !isAllowed(r.reasons[k], allowed) {
			mark, unexpected = "  (not allowed under CI=true)", unexpected+1
		}
		fmt.Fprintf(out, "  skipped %s: %s%s\n", k, r.reasons[k], mark)
	}
	return len(r.failed) == 0 && !r.packageFailed && unexpected == 0
}

// skipReason is the message of t.Skip: the last output line that is not
// the --- SKIP line itself.
func skipReason(b *strings.Builder) string {
	if b == nil {
		return "no reason given"
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		if _, msg, ok := strings.Cut(l, ".go:"); ok { // file.go:12: message
			if _, m, ok := strings.Cut(msg, ": "); ok {
				return m
			}
		}
		return l
	}
	return "no reason given"
}

func isAllowed(reason string, allowed []string) bool {
	for _, a := range allowed {
		if a != "" && reason == a {
			return true
		}
	}
	return false
}
