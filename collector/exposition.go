package collector

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

// Exposition keeps each app's metrics rendered, the way kube-state-metrics
// does: an app is rendered once per poll, on the poller's goroutine
// (Update), in the classic text format, in OpenMetrics and in delimited
// protobuf, and a scrape only concatenates bytes. With many apps this keeps
// /metrics fast, and a scrape never waits on a poll. In protobuf a family
// of all apps is one message: its name, help and type once, then every
// app's metrics, which protobuf reads as one repeated field however the
// entries were written.
type Exposition struct {
	// Options shape the call series (histograms, labels dropped); set
	// them before the first Update.
	Options Options

	mu   sync.RWMutex
	apps map[string]*rendered
	// order is apps sorted by name, replaced (not modified) on change.
	order []*rendered
}

// rendered is one app's metrics, split by metric family.
type rendered struct {
	app      string
	families map[string]*family
}

// family is one metric family of one app, rendered in each text format
// (indexed by textFormat) and in protobuf.
type family struct {
	text  [2]familyText
	proto familyText // header: the family without metrics; body: its metrics, as MetricFamily field 4
}

type familyText struct {
	header   []byte   // # HELP and # TYPE lines
	body     []byte   // the samples
	deflated []byte   // body compressed as a piece of a gzip stream (see gzip.go)
	crc      crcPiece // body's CRC-32, for the gzip trailer (see crc.go)
}

// newFamilyText keeps a family's header and body with the body's gzip piece.
func newFamilyText(header, body []byte) familyText {
	return familyText{header: header, body: body, deflated: deflate(body), crc: newCRCPiece(body)}
}

// textFormat is a text exposition format the exposition pre-renders.
type textFormat int

const (
	classicText textFormat = iota // text/plain; version=0.0.4
	openMetrics                   // application/openmetrics-text, with _created lines and exemplars
)

// writeFamily renders one family in a text format.
func (f textFormat) writeFamily(w io.Writer, mf *dto.MetricFamily) error {
	var err error
	if f == openMetrics {
		_, err = expfmt.MetricFamilyToOpenMetrics(w, mf, expfmt.WithCreatedLines())
	} else {
		_, err = expfmt.MetricFamilyToText(w, mf)
	}
	return err
}

// NewExposition returns an empty exposition.
func NewExposition() *Exposition { return &Exposition{apps: map[string]*rendered{}} }

// render turns one snapshot into its families, rendered in both formats.
func render(s *accountant.Snapshot, opts Options) (map[string]*family, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(New(func() []*accountant.Snapshot { return []*accountant.Snapshot{s} }).With(opts)); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*family, len(mfs))
	for _, mf := range mfs {
		fam := &family{}
		if fam.proto, err = protoParts(mf); err != nil {
			return nil, err
		}
		for _, f := range []textFormat{classicText, openMetrics} {
			var full bytes.Buffer
			if err := f.writeFamily(&full, mf); err != nil {
				return nil, err
			}
			// The text starts with exactly two lines, # HELP and # TYPE
			// (HELP escapes its newlines); the samples follow.
			b := full.Bytes()
			first := bytes.IndexByte(b, '\n') + 1
			cut := first + bytes.IndexByte(b[first:], '\n') + 1
			if !bytes.HasPrefix(b, []byte("# HELP ")) || !bytes.HasPrefix(b[first:], []byte("# TYPE ")) {
				return nil, fmt.Errorf("unexpected exposition of %s", mf.GetName())
			}
			fam.text[f] = newFamilyText(b[:cut], b[cut:])
		}
		out[mf.GetName()] = fam
	}
	return out, nil
}

// protoParts renders a family in protobuf: the family without its metrics,
// and its metrics as the entries of MetricFamily's repeated field 4.
func protoParts(mf *dto.MetricFamily) (familyText, error) {
	header, err := proto.Marshal(&dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Unit: mf.Unit})
	if err != nil {
		return familyText{}, err
	}
	var body []byte
	for _, m := range mf.Metric {
		b, err := proto.Marshal(m)
		if err != nil {
			return familyText{}, err
		}
		body = protowire.AppendTag(body, metricFamilyMetric, protowire.BytesType)
		body = protowire.AppendBytes(body, b)
	}
	return newFamilyText(header, body), nil
}

// metricFamilyMetric is the field number of MetricFamily.metric.
const metricFamilyMetric = 4

// Update renders a new snapshot of an app. It is meant to be the poller's
// OnPublish hook.
func (e *Exposition) Update(s *accountant.Snapshot) {
	fams, err := render(s, e.Options)
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
// exporter's own build, reload, Go and process metrics) in the classic
// text format.
func (e *Exposition) WriteTo(w io.Writer, global prometheus.Gatherer) error {
	write, err := e.prepare(global)
	if err != nil {
		return err
	}
	return write(plainSink{w}, expfmt.NewFormat(expfmt.TypeTextPlain))
}

// prepare gathers global, the only step that can fail for reasons other
// than the connection, and returns the function that writes everything in
// a format.
func (e *Exposition) prepare(global prometheus.Gatherer) (func(sink, expfmt.Format) error, error) {
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
	return func(w sink, format expfmt.Format) error {
		switch format.FormatType() {
		case expfmt.TypeProtoDelim:
			return writeProto(w, format, names, byName, apps)
		case expfmt.TypeOpenMetrics:
			if err := writeText(w, openMetrics, names, byName, apps); err != nil {
				return err
			}
			_, err := expfmt.FinalizeOpenMetrics(w)
			return err
		default:
			return writeText(w, classicText, names, byName, apps)
		}
	}, nil
}

// writeText writes the families by name: global ones rendered now, the
// apps' from their pre-rendered text, one header per family.
func writeText(w sink, f textFormat, names []string, global map[string]*dto.MetricFamily, apps []*rendered) error {
	for _, name := range names {
		if mf := global[name]; mf != nil {
			if err := f.writeFamily(w, mf); err != nil {
				return err
			}
			continue
		}
		header := false
		for _, r := range apps {
			fam := r.families[name]
			if fam == nil {
				continue
			}
			t := &fam.text[f]
			if !header {
				if _, err := w.Write(t.header); err != nil {
					return err
				}
				header = true
			}
			if err := w.body(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeProto writes the families as delimited protobuf: global ones
// encoded now, each app family as one message of its pre-rendered parts,
// the header once and every app's metrics after it.
func writeProto(w sink, format expfmt.Format, names []string, global map[string]*dto.MetricFamily, apps []*rendered) error {
	enc := expfmt.NewEncoder(w, format)
	var prefix []byte
	for _, name := range names {
		if mf := global[name]; mf != nil {
			if err := enc.Encode(mf); err != nil {
				return err
			}
			continue
		}
		var header []byte
		size := 0
		for _, r := range apps {
			if fam := r.families[name]; fam != nil {
				header = fam.proto.header
				size += len(fam.proto.body)
			}
		}
		prefix = protowire.AppendVarint(prefix[:0], uint64(len(header)+size))
		if _, err := w.Write(prefix); err != nil {
			return err
		}
		if _, err := w.Write(header); err != nil {
			return err
		}
		for _, r := range apps {
			if fam := r.families[name]; fam != nil {
				if err := w.body(&fam.proto); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Handler serves the exposition and global's metrics in the format the
// client asks for (negotiated as promhttp does: OpenMetrics, protobuf or
// the classic text), gzipped when the client accepts gzip. The text is
// streamed, not assembled in memory.
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
		format := expfmt.NegotiateAccept(r.Header, servedFormats...)
		w.Header().Set("Content-Type", string(format))
		w.Header().Add("Vary", "Accept")
		w.Header().Add("Vary", "Accept-Encoding")
		// A write fails only when the scraper has gone away: nothing to do.
		bw := bufio.NewWriterSize(w, 64<<10)
		var out sink = plainSink{bw}
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			w.Header().Set("Content-Encoding", "gzip")
			out = &gzipSink{w: bw}
		}
		if write(out, format) == nil && out.close() == nil {
			bw.Flush()
		}
	})
}

// servedFormats are the formats /metrics serves, in the order preferred
// when a client accepts several equally.
var servedFormats = []expfmt.Format{expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtOpenMetrics_0_0_1, expfmt.FmtProtoDelim, expfmt.FmtText}

// acceptsGzip reads an Accept-Encoding header (RFC 9110): gzip is accepted
// when it, or failing that "*", is listed with a quality above zero.
func acceptsGzip(header string) bool {
	gzip, star := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					f = 0
				}
				q = f
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			gzip = max(gzip, q)
		case "*":
			star = max(star, q)
		}
	}
	if gzip >= 0 {
		return gzip > 0
	}
	return star > 0
}
