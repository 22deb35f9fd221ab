package collector

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCRCPiecesCombineToTheStreamsCRC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, cuts := range [][]int{
		{},                          // one piece
		{0, 0, 10},                  // empty pieces change nothing
		{1, 2, 3, 4},                // one-byte pieces
		{65_536, 131_072},           // powers of two
		{7, 100_003, 299_999},       // odd lengths, a last piece of one byte
		{150_000, 150_000, 200_000}, // an empty piece in the middle
	} {
		crc, from := uint32(0), 0
		for _, to := range append(cuts, len(data)) {
			crc = newCRCPiece(data[from:to]).after(crc)
			from = to
		}
		assert.Equal(t, crc32.ChecksumIEEE(data), crc, "cut at %v", cuts)
	}
	for range 200 {
		a, b := rng.IntN(5000), rng.IntN(5000)
		x, y := data[:a], data[a:a+b]
		assert.Equal(t, crc32.ChecksumIEEE(data[:a+b]), newCRCPiece(y).after(crc32.ChecksumIEEE(x)), "%d + %d bytes", a, b)
	}
}

func TestCRCShiftIsTheCRCOfZeros(t *testing.T) {
	// Shifting a CRC past n zero bytes with the operator equals running the
	// CRC over them from the raw register (no pre- or post-inversion).
	for _, n := range []int{0, 1, 2, 3, 8, 255, 4096, 100_001} {
		for _, reg := range []uint32{0x80000000, 0xdeadbeef, 1} {
			want := ^crc32.Update(^reg, crc32.IEEETable, make([]byte, n))
			assert.Equal(t, want, multModP(crcShift(uint64(n)), reg), "n=%d reg=%#x", n, reg)
		}
	}
}
