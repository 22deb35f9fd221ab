package accountant

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"slices"
)

// The dedupe set remembers a counted call by a 64-bit hash of its session
// id, not by the id itself: a 12-byte slot in an open-addressing table
// at most three quarters full (16 to 32 bytes per id as it grows)
// instead of a string and a map entry (about 150 bytes). The hash is
// FNV-1a, fixed by its specification, so that a state file written by one
// version or process is read the same by every other. docs/scaling.md says
// what a collision would do and how likely one is.

// idKey is the dedupe key of a session id. Zero marks an empty slot in an
// idTable, so no id has key zero.
func idKey(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	if k := h.Sum64(); k != 0 {
		return k
	}
	return 1
}

// idTable maps dedupe keys to timestamps: an open-addressing hash table
// with linear probing, grown at three quarters full and rebuilt at the size
// its entries need when a prune leaves it under an eighth full. Deletion shifts the following
// entries back, so there are no tombstones and lookups stay short. Keys
// and timestamps are kept in two arrays, 12 bytes a slot: a timestamp is
// stored as unsigned seconds, which hold every time until 2106; a later
// one (no call's) is stored as that limit, which only keeps its id longer.
type idTable struct {
	keys []uint64
	ts   []uint32
	n    int
}

const idTableMin = 16

func packTS(ts int64) uint32 { return uint32(min(max(ts, 0), math.MaxUint32)) }

// slot spreads a key over the table: FNV's low bits are poor alone.
func (t *idTable) slot(key uint64) int {
	key ^= key >> 33
	key *= 0xff51afd7ed558ccd
	key ^= key >> 33
	return int(key & uint64(len(t.keys)-1))
}

func (t *idTable) Len() int { return t.n }

func (t *idTable) Get(key uint64) (int64, bool) {
	if t.n == 0 {
		return 0, false
	}
	for i := t.slot(key); ; i = (i + 1) & (len(t.keys) - 1) {
		switch t.keys[i] {
		case key:
			return int64(t.ts[i]), true
		case 0:
			return 0, false
		}
	}
}

func (t *idTable) Put(key uint64, ts int64) {
	if (t.n+1)*4 > len(t.keys)*3 {
		t.resize(max(idTableMin, 2*len(t.keys)))
	}
	for i := t.slot(key); ; i = (i + 1) & (len(t.keys) - 1) {
		switch t.keys[i] {
		case key:
			t.ts[i] = packTS(ts)
			return
		case 0:
			t.keys[i], t.ts[i] = key, packTS(ts)
			t.n++
			return
		}
	}
}

func (t *idTable) Delete(key uint64) {
	if t.n == 0 {
		return
	}
	mask := len(t.keys) - 1
	i := t.slot(key)
	for t.keys[i] != key {
		if t.keys[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	// Shift back every following entry of the run that may take the hole.
	for j := (i + 1) & mask; t.keys[j] != 0; j = (j + 1) & mask {
		home := t.slot(t.keys[j])
		// The entry at j may move to i when its home is not in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.keys[i], t.ts[i] = t.keys[j], t.ts[j]
			i = j
		}
	}
	t.keys[i], t.ts[i] = 0, 0
	t.n--
}

// DeleteFunc drops every entry for which drop is true (asked once per
// entry), and rebuilds the table at the size its remaining entries need
// when they fill less than an eighth of it.
func (t *idTable) DeleteFunc(drop func(key uint64, ts int64) bool) {
	var gone []uint64
	for k, ts := range t.All {
		if drop(k, ts) {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		t.Delete(k)
	}
	if t.n*8 < len(t.keys) {
		t.resize(sizeFor(t.n))
	}
}

// All yields every entry, in table order.
func (t *idTable) All(yield func(key uint64, ts int64) bool) {
	for i, k := range t.keys {
		if k != 0 && !yield(k, int64(t.ts[i])) {
			return
		}
	}
}

// sizeFor is the smallest power-of-two table that holds n entries below
// three quarters full.
func sizeFor(n int) int {
	size := idTableMin
	for (n+1)*4 > size*3 {
		size *= 2
	}
	return size
}

func (t *idTable) resize(size int) {
	old := *t
	t.keys, t.ts, t.n = make([]uint64, size), make([]uint32, size), 0
	for k, ts := range old.All {
		t.Put(k, ts)
	}
}

// MarshalJSON writes the table as base64 of its entries sorted by key,
// each the key and the timestamp as 8 bytes little-endian: about 21 bytes
// per id in the state file, the same whatever the length of the ids.
func (t *idTable) MarshalJSON() ([]byte, error) {
	type entry struct {
		key uint64
		ts  int64
	}
	entries := make([]entry, 0, t.n)
	for k, ts := range t.All {
		entries = append(entries, entry{k, ts})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	raw := make([]byte, 16*len(entries))
	for i, e := range entries {
		binary.LittleEndian.PutUint64(raw[16*i:], e.key)
		binary.LittleEndian.PutUint64(raw[16*i+8:], uint64(e.ts))
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(raw))
}

func (t *idTable) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	if len(raw)%16 != 0 {
		return errors.New("dedupe set is not a whole number of entries")
	}
	*t = idTable{}
	t.resize(sizeFor(len(raw) / 16))
	for i := 0; i < len(raw); i += 16 {
		k := binary.LittleEndian.Uint64(raw[i:])
		if k == 0 {
			return errors.New("dedupe set has an entry with key zero")
		}
		t.Put(k, int64(binary.LittleEndian.Uint64(raw[i+8:])))
	}
	return nil
}

// entries is the table as a map, for comparisons.
func (t *idTable) entries() map[uint64]int64 {
	m := make(map[uint64]int64, t.n)
	for k, ts := range t.All {
		m[k] = ts
	}
	return m
}
