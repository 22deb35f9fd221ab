package collector

import "hash/crc32"

// A gzip trailer carries the CRC-32 of everything the stream decompresses
// to. A scrape does not run the CRC over the 100 MB of plain text behind
// the pieces: each piece's CRC is taken when its app is rendered, with the
// operator that shifts a CRC past the piece's length, and a scrape
// combines them, 32 steps a piece (zlib's crc32_combine_op).

// crcPiece is the CRC-32 (IEEE) of a piece of plain bytes and what
// appending it to a stream does to the stream's CRC.
type crcPiece struct {
	sum   uint32 // crc32.ChecksumIEEE of the piece
	shift uint32 // x^(8*len) modulo the CRC polynomial
}

func newCRCPiece(b []byte) crcPiece {
	return crcPiece{sum: crc32.ChecksumIEEE(b), shift: crcShift(uint64(len(b)))}
}

// after returns the CRC of a stream whose CRC was crc, with the piece appended.
func (p crcPiece) after(crc uint32) uint32 { return multModP(p.shift, crc) ^ p.sum }

// multModP multiplies two polynomials modulo the CRC polynomial, in the
// CRC's reflected bit order (the top bit is x^0).
func multModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		if b&1 != 0 {
			b = b>>1 ^ crc32.IEEE
		} else {
			b >>= 1
		}
	}
	return p
}

// x2n[k] is x^(2^k) modulo the CRC polynomial.
var x2n = func() (t [64]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = multModP(p, p)
	}
	return t
}()

// crcShift returns x^(8n) modulo the CRC polynomial: the operator that
// moves a CRC past n zero bytes.
func crcShift(n uint64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = multModP(x2n[k%64], p)
		}
	}
	return p
}
