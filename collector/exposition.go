package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

// Exposition keeps each app's metrics rendered as exposition text, the way
// kube-state-metrics does: an app is rendered once per poll, on the
// poller's goroutine (Update), and a scrape only concatenates bytes. With
// many apps this keeps /metrics fast, and a scrape never waits on a poll.
type Exposition struct {
	mu   sync.RWMutex
	apps map[string]*rendered
	// order is apps sorted by name, replaced (not modified) on change.
	order []*rendered
}

// rendered is one app's text, split by metric family.
type rendered struct {
	app      string
	families map[string]*familyText
}

type familyText struct {
	header []byte // # HELP and # TYPE lines
	body   []byte // the samples
}

// NewExposition returns an empty exposition.
func NewExposition() *Exposition { return &Exposition{apps: map[string]*rendered{}} }

// render turns one snapshot into exposition text per family.
func render(s *accountant.Snapshot) (map[string]*familyText, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(New(func() []*accountant.Snapshot { return []*accountant.Snapshot{s} })); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*familyText, len(mfs))
	for _, mf := range mfs {
		var full bytes.Buffer
		if _, err := expfmt.MetricFamilyToText(&full, mf); err != nil {
			return nil, err
		}
		// The text starts with exactly two lines, # HELP and # TYPE (HELP
		// escapes its newlines); the samples follow.
		b := full.Bytes()
		cut := bytes.IndexByte(b, '\n') + 1
		cut += bytes.IndexByte(b[cut:], '\n') + 1
		if !bytes.HasPrefix(b, []byte("# HELP ")) || !bytes.HasPrefix(b[bytes.IndexByte(b, '\n')+1:], []byte("# TYPE ")) {
			return nil, fmt.Errorf("unexpected exposition of %s", mf.GetName())
		}
		out[mf.GetName()] = &familyText{header: b[:cut], body: b[cut:]}
	}
	return out, nil
}

// Update renders a new snapshot of an app. It is meant to be the poller's
// OnPublish hook.
func (e *Exposition) Update(s *accountant.Snapshot) {
	fams, err := render(s)
	if err != nil {
		// The collector's own output is pedantically valid by construction
		// (a test checks it); keep the previous rendering if it is not.
		return
	}
	r := &rendered{app: s.App, families: fams}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.apps[s.App] = r
	e.reorder()
}

// Forget drops a removed app.
func (e *Exposition) Forget(app string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.apps, app)
	e.reorder()
}

func (e *Exposition) reorder() {
	order := make([]*rendered, 0, len(e.apps))
	for _, r := range e.apps {
		order = append(order, r)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].app < order[j].app })
	e.order = order
}

// WriteTo writes the apps' families merged with those of global (the
// exporter's own build, reload, Go and process metrics) in the text format.
func (e *Exposition) WriteTo(w io.Writer, global prometheus.Gatherer) error {
	write, err := e.prepare(global)
	if err != nil {
		return err
	}
	return write(w)
}

// prepare gathers global, the only step that can fail for reasons other
// than the connection, and returns the function that writes everything.
func (e *Exposition) prepare(global prometheus.Gatherer) (func(io.Writer) error, error) {
	e.mu.RLock()
	apps := e.order
	e.mu.RUnlock()

	mfs, err := global.Gather()
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*dto.MetricFamily, len(mfs))
	names := make([]string, 0, len(mfs)+32)
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
		names = append(names, mf.GetName())
	}
	for _, r := range apps {
		for name := range r.families {
			if _, ok := byName[name]; !ok {
				byName[name] = nil
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return func(w io.Writer) error {
		for _, name := range names {
			if mf := byName[name]; mf != nil {
				if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
					return err
				}
				continue
			}
			header := false
			for _, r := range apps {
				f := r.families[name]
				if f == nil {
					continue
				}
				if !header {
					if _, err := w.Write(f.header); err != nil {
						return err
					}
					header = true
				}
				if _, err := w.Write(f.body); err != nil {
					return err
				}
			}
		}
		return nil
	}, nil
}

// Handler serves the exposition and global's metrics, gzipped when the
// client accepts it. The text is streamed, not assembled in memory.
func (e *Exposition) Handler(global prometheus.Gatherer, onError func(error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		write, err := e.prepare(global)
		if err != nil {
			if onError != nil {
				onError(err)
			}
			http.Error(w, fmt.Sprintf("error gathering metrics: %v", err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var out io.Writer = w
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzipPool.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() { gz.Close(); gzipPool.Put(gz) }()
			out = gz
		}
		// A write fails only when the scraper has gone away: nothing to do.
		bw := bufio.NewWriterSize(out, 64<<10)
		if write(bw) == nil {
			bw.Flush()
		}
	})
}

var gzipPool = sync.Pool{New: func() any {
	gz, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return gz
}}
