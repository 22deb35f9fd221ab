package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
)

// With apps sharded over replicas (--config.shard), CometChat posts each
// webhook to whichever replica its load balancer picks. The Forwarder
// sends a webhook naming an app of another shard on to that shard's
// listener, so that its owner counts the call at once rather than at its
// next poll. A forwarded webhook carries ForwardedHeader and is never
// forwarded again, so that replicas that disagree on the shards cannot
// bounce one between them.

// ShardPlaceholder is the part of the peer URL template replaced by a
// shard's index.
const ShardPlaceholder = "{shard}"

// ForwardedHeader marks a webhook forwarded by a replica; its value is
// the sender's shard index.
const ForwardedHeader = "X-Cometchat-Exporter-Forwarded-By"

// MaxForwardsInFlight bounds the forwards under way; a webhook arriving
// over it is not forwarded (its call is counted at the owner's next poll).
const MaxForwardsInFlight = 64

// ForwardTimeout bounds one forward.
const ForwardTimeout = 5 * time.Second

// ParsePeerURL checks a peer URL template: an http or https URL with a
// host and ShardPlaceholder in it.
func ParsePeerURL(template string) error {
	if !strings.Contains(template, ShardPlaceholder) {
		return fmt.Errorf("%q has no %s to put a shard's index in", template, ShardPlaceholder)
	}
	u, err := url.Parse(strings.ReplaceAll(template, ShardPlaceholder, "0"))
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", template)
	}
	return nil
}

// Owners are, for an app id, the apps of other shards with that app id,
// by shard index.
type Owners map[string]map[int][]string

// Forwarder forwards webhooks to the shards that own their apps.
type Forwarder struct {
	self     int
	template string
	owners   atomic.Pointer[Owners]
	client   *http.Client
	slots    chan struct{}
	logger   log.Logger
	total    *prometheus.CounterVec
}

// NewForwarder returns the forwarder of shard self, whose peers listen at
// template with ShardPlaceholder replaced by their index (see
// ParsePeerURL). It forwards nothing until SetOwners.
func NewForwarder(self int, template string, reg prometheus.Registerer, logger log.Logger) *Forwarder {
	f := &Forwarder{self: self, template: template, logger: logger,
		client: &http.Client{Timeout: ForwardTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a peer never redirects; credentials go nowhere else
		}},
		slots: make(chan struct{}, MaxForwardsInFlight),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cometchat_exporter_webhooks_forwarded_total",
			Help: "Webhooks forwarded to the shard that polls their app, by shard and result: ok, failed (no 2xx answer in time), dropped (too many in flight).",
		}, []string{"shard", "result"}),
	}
	reg.MustRegister(f.total)
	return f
}

// SetOwners replaces the apps of other shards (at start and each reload).
// Shards are created in the metrics as they appear.
func (f *Forwarder) SetOwners(o Owners) {
	for _, byShard := range o {
		for shard := range byShard {
			for _, r := range []string{forwardOK, forwardFailed, forwardDropped} {
				f.total.WithLabelValues(strconv.Itoa(shard), r)
			}
		}
	}
	f.owners.Store(&o)
}

// Results of a forward.
const (
	forwardOK      = "ok"
	forwardFailed  = "failed"
	forwardDropped = "dropped"
)

// remote returns the other shards' apps with appID.
func (f *Forwarder) remote(appID string) map[int][]string {
	o := f.owners.Load()
	if o == nil {
		return nil
	}
	return (*o)[appID]
}

// forward sends body on to shard in the background, with the credentials
// the webhook came with (every replica takes the same web config).
func (f *Forwarder) forward(shard int, body []byte, header http.Header) {
	label := strconv.Itoa(shard)
	select {
	case f.slots <- struct{}{}:
	default:
		f.total.WithLabelValues(label, forwardDropped).Inc()
		return
	}
	go func() {
		defer func() { <-f.slots }()
		err := f.send(shard, body, header)
		if err != nil {
			f.total.WithLabelValues(label, forwardFailed).Inc()
			level.Warn(f.logger).Log("msg", "Forwarding a webhook failed; its call is counted at its shard's next poll", "shard", shard, "err", err)
			return
		}
		f.total.WithLabelValues(label, forwardOK).Inc()
	}()
}

func (f *Forwarder) send(shard int, body []byte, header http.Header) error {
	target := strings.ReplaceAll(f.template, ShardPlaceholder, strconv.Itoa(shard))
	ctx, cancel := context.WithTimeout(context.Background(), ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for _, h := range []string{"Authorization", "Content-Type"} {
		if v := header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(ForwardedHeader, strconv.Itoa(f.self))
	resp, err := f.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is in the flag; the error need not repeat it
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("shard %d answered %s", shard, resp.Status)
	}
	return nil
}
