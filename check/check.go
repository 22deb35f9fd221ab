// Package check is `cometchat_exporter check`: it reads each configured
// app's Calls API once, as the exporter would, and says what it found and
// whether the exporter will count it correctly. It never prints the key.
package check

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
	"github.com/cometchat-exporter/cometchat-exporter/config"
)

// Verdicts of a finding: ok; warn, the exporter copes at a cost in
// requests; fail, calls would go uncounted or nothing can be read.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "FAIL"
)

// Finding is one line of the report.
type Finding struct {
	Verdict, What, Detail string
}

// perPage is what the exporter asks for.
const perPage = 100

// App reads one app's API and returns its findings.
func App(ctx context.Context, c *cometchat.Client) []Finding {
	var out []Finding
	add := func(v, what, format string, args ...any) {
		out = append(out, Finding{v, what, fmt.Sprintf(format, args...)})
	}

	start := time.Now()
	page, err := c.List(ctx, cometchat.ListOptions{Page: 1, PerPage: perPage})
	if err != nil {
		add(Fail, "list calls", "%v", err)
		return out
	}
	add(OK, "key accepted", "List Calls answered in %s", time.Since(start).Round(time.Millisecond))
	got := len(page.Calls) + page.Skipped
	p := page.Pagination
	switch {
	case got < perPage && p.Total > got:
		add(Warn, "page size", "asked %d, got %d of %d: pages are capped at %d (more requests per scan, no call lost)", perPage, got, p.Total, got)
	case got > perPage:
		add(Warn, "page size", "asked %d, got %d: perPage is not honoured (the exporter reads what comes)", perPage, got)
	default:
		add(OK, "page size", "asked %d, got %d", perPage, got)
	}
	switch {
	case p.Total == 0 && got > 0:
		add(Warn, "pagination total", "meta.pagination.total is missing: the count check against the API's total is off, and scans read until a short page")
	default:
		add(OK, "pagination total", "%d calls listed", p.Total)
	}
	if p.CurrentPage != 1 {
		add(Warn, "pagination current_page", "current_page is %d on page 1: the exporter checks pages by their content instead", p.CurrentPage)
	} else {
		add(OK, "pagination current_page", "1 on page 1")
	}
	if got == 0 {
		add(OK, "calls", "none listed yet: order, timestamps and Get Call cannot be checked until there are")
		return out
	}

	var scaled, undated, unsorted int
	last := int64(0)
	for i := range page.Calls {
		call := &page.Calls[i]
		switch {
		case call.NoInitiatedAt:
			undated++
			continue
		case call.ScaledTimestamps:
			scaled++
		}
		ts := call.Timestamp()
		if last > 0 && ts > last {
			unsorted++
		}
		last = ts
	}
	verdict := func(n int) string {
		if n > 0 {
			return Warn
		}
		return OK
	}
	add(verdict(unsorted), "order", "%d of %d entries newer than the one before (newest first expected; out of order costs requests, never calls)", unsorted, len(page.Calls))
	add(verdict(scaled), "timestamp units", "%d of %d entries in milliseconds or microseconds (normalised to seconds)", scaled, len(page.Calls))
	add(verdict(undated), "initiatedAt", "%d of %d entries without initiatedAt (placed by their neighbours)", undated, len(page.Calls))
	if page.Skipped > 0 {
		add(Fail, "sessionId", "%d of %d entries without sessionId: those calls cannot be counted exactly once, so they are not counted", page.Skipped, got)
	} else {
		add(OK, "sessionId", "every entry has one")
	}

	// Pages 2 and 3, as a scan reads them.
	seen := map[string]bool{}
	for _, call := range page.Calls {
		seen[string(call.SessionID)] = true
	}
	for n, prev := 2, got; n <= 3 && (p.Total > (n-1)*got || prev == got); n++ {
		next, err := c.List(ctx, cometchat.ListOptions{Page: n, PerPage: perPage})
		if err != nil {
			add(Warn, fmt.Sprintf("page %d", n), "%v (a page that keeps failing is read around and read again later)", err)
			continue
		}
		repeated := 0
		for _, call := range next.Calls {
			if seen[string(call.SessionID)] {
				repeated++
			}
			seen[string(call.SessionID)] = true
		}
		add(verdict(repeated), fmt.Sprintf("page %d", n), "%d entries, %d of them on an earlier page too (repeats are counted once)", len(next.Calls), repeated)
		if prev = len(next.Calls) + next.Skipped; prev == 0 {
			break
		}
	}

	ongoing, err := c.List(ctx, cometchat.ListOptions{Page: 1, PerPage: perPage, Status: "ongoing"})
	if err != nil {
		add(Warn, "status=ongoing filter", "%v", err)
	} else {
		other := 0
		for _, call := range ongoing.Calls {
			if call.Status != "ongoing" {
				other++
			}
		}
		add(verdict(other), "status=ongoing filter", "%d of %d entries not ongoing (when the filter is ignored, the exporter filters itself)", other, len(ongoing.Calls))
	}

	id := string(page.Calls[0].SessionID)
	call, err := c.Get(ctx, id)
	switch {
	case err != nil:
		add(Fail, "get call", "%v: calls in progress could not be followed to their end", err)
	case string(call.SessionID) != id:
		add(Fail, "get call", "asked for %s, got %s", id, call.SessionID)
	default:
		add(OK, "get call", "%s is %s", id, call.Status)
	}
	return out
}

// Run checks every app and writes the report; it returns true when no
// finding failed.
func Run(ctx context.Context, apps []config.App, client func(config.App) (*cometchat.Client, error), w io.Writer) bool {
	ok := true
	for _, a := range apps {
		region := a.Region
		if region == "" {
			region = "none (base URL given)"
		}
		fmt.Fprintf(w, "app %q: base URL %s, region %s\n", a.Name, a.BaseURL, region)
		c, err := client(a)
		findings := []Finding{{Fail, "client", fmt.Sprint(err)}}
		if err == nil {
			findings = App(ctx, c)
		}
		for _, f := range findings {
			fmt.Fprintf(w, "  %-4s  %s: %s\n", f.Verdict, f.What, f.Detail)
			ok = ok && f.Verdict != Fail
		}
	}
	if ok {
		fmt.Fprintln(w, "result: the exporter will count these apps correctly")
	} else {
		fmt.Fprintln(w, "result: the exporter will NOT count every call: see FAIL above")
	}
	return ok
}
