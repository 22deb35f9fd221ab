package collector

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cometchat-exporter/cometchat-exporter/accountant"
)

// A gzipped scrape, assembled from pieces compressed at render time and
// at scrape time, is one gzip member that decompresses (its CRC-32 and
// length checked by the reader) to exactly the plain scrape, in every
// format, with many apps and the exporter's own metrics between them.
func TestGzipIsThePlainBody(t *testing.T) {
	e := NewExposition()
	e.Options.Histograms = BothHistograms
	for _, app := range []string{"alpha", "beta", "gamma", "delta"} {
		e.Update(fullSnapshot(app, 12))
	}
	e.Update(&accountant.Snapshot{App: "empty"})
	global := prometheus.NewRegistry()
	// Global families sorted among the apps' (a: before them, z: after).
	for _, name := range []string{"a_global_total", "cometchat_exporter_m_total", "z_global_total"} {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "A global counter."})
		c.Add(3)
		global.MustRegister(c)
	}
	srv := httptest.NewServer(e.Handler(global, nil))
	defer srv.Close()
	for name, accept := range map[string]string{"text": "text/plain;version=0.0.4", "openmetrics": acceptProm2, "protobuf": acceptProm3Proto} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("Accept", accept)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
			require.NoError(t, err)
			zipped, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			gz, err := gzip.NewReader(bytes.NewReader(zipped))
			require.NoError(t, err)
			gz.Multistream(false)
			unzipped, err := io.ReadAll(gz) // fails on a bad CRC-32 or length
			require.NoError(t, err)
			n := len(zipped)
			assert.Equal(t, crc32.ChecksumIEEE(unzipped), binary.LittleEndian.Uint32(zipped[n-8:]), "the member ends the body")
			assert.Equal(t, uint32(len(unzipped)), binary.LittleEndian.Uint32(zipped[n-4:]))
			_, plain := scrape(t, srv.URL, accept, "")
			assert.Equal(t, plain, unzipped)
			assert.Less(t, len(zipped), len(unzipped)/5, "compressed")
		})
	}
}
