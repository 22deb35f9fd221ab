package collector

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// A scrape with gzip does not compress the whole exposition: each app's
// rendered bodies are compressed once, when the app is rendered, as raw
// deflate blocks ended by a sync flush (byte-aligned and not final), and
// a deflate stream may be any sequence of such blocks. A scrape writes a
// gzip header, the pieces in order (what is rendered at scrape time, the
// family headers and the exporter's own metrics, compressed on the spot
// the same way), an empty final block, and the CRC-32 and length of what
// the pieces decompress to, combined from the pieces' own CRCs (crc.go).
// The cost of a scrape is then copying the compressed bytes.

// deflate compresses b as a piece, at deflate's fastest level: a body is
// compressed at each poll of its app, as much as a scrape that compressed
// everything would compress of it. The pieces, each compressed without the
// others before it, come out about twice the size of one stream
// (BENCHMARKS.md).
func deflate(b []byte) []byte {
	var buf bytes.Buffer
	fw := flatePool.Get().(*flate.Writer)
	fw.Reset(&buf)
	fw.Write(b) // writes to a bytes.Buffer do not fail
	fw.Flush()
	flatePool.Put(fw)
	return buf.Bytes()
}

var flatePool = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(io.Discard, flate.BestSpeed)
	return fw
}}

// sink is where a format writes the exposition: plain bytes as they come,
// and pre-rendered bodies with their compressed form and CRC.
type sink interface {
	io.Writer
	body(t *familyText) error
	close() error
}

// plainSink writes everything as is.
type plainSink struct{ io.Writer }

func (s plainSink) body(t *familyText) error { _, err := s.Write(t.body); return err }
func (s plainSink) close() error             { return nil }

// gzipSink writes one gzip member of pieces.
type gzipSink struct {
	w       io.Writer
	pending bytes.Buffer // plain bytes not compressed yet
	crc     uint32
	size    uint32
	started bool
}

// gzipHeader: magic, deflate, no flags, no time, no extra flags, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

func (s *gzipSink) Write(p []byte) (int, error) { return s.pending.Write(p) }

// flush compresses the plain bytes written since the last piece.
func (s *gzipSink) flush() error {
	if !s.started {
		if _, err := s.w.Write(gzipHeader); err != nil {
			return err
		}
		s.started = true
	}
	if s.pending.Len() == 0 {
		return nil
	}
	b := s.pending.Bytes()
	s.crc = crc32.Update(s.crc, crc32.IEEETable, b)
	s.size += uint32(len(b))
	_, err := s.w.Write(deflate(b))
	s.pending.Reset()
	return err
}

// body writes a pre-rendered piece, its CRC combined, not recomputed.
func (s *gzipSink) body(t *familyText) error {
	if err := s.flush(); err != nil {
		return err
	}
	s.crc = t.crc.after(s.crc)
	s.size += uint32(len(t.body))
	_, err := s.w.Write(t.deflated)
	return err
}

// close ends the stream: an empty final block (fixed codes), then the
// CRC-32 and the length of the plain bytes, little-endian.
func (s *gzipSink) close() error {
	if err := s.flush(); err != nil {
		return err
	}
	trailer := []byte{0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(trailer[2:], s.crc)
	binary.LittleEndian.PutUint32(trailer[6:], s.size)
	_, err := s.w.Write(trailer)
	return err
}
