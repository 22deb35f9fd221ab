package accountant

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The key of an id never changes: state files written by one version are
// read by the next. These values are FNV-1a 64 of the ids.
func TestIDKeyIsStable(t *testing.T) {
	for id, want := range map[string]uint64{
		"":                             0xcbf29ce484222325,
		"a":                            0xaf63dc4c8601ec8c,
		"v1.us.28c4ab6a2b1e8d4.123456": 0xa5e43800b2fee748,
	} {
		assert.Equal(t, want, idKey(id), "%q", id)
	}
	assert.NotEqual(t, idKey("v1.us.a.1"), idKey("v1.us.a.2"))
}

// The table against a map, through random puts, deletes and prunes: every
// operation leaves the same contents, and lookups agree, also for keys
// whose slots collide (a small key space forces long probe runs).
func TestIDTableAgreesWithAMap(t *testing.T) {
	for _, space := range []uint64{40, 1000, 1 << 40} {
		t.Run(fmt.Sprint(space), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, space))
			var tab idTable
			want := map[uint64]int64{}
			for i := range 20_000 {
				k := 1 + r.Uint64N(space)
				switch x := r.IntN(100); {
				case x < 60:
					ts := int64(i)
					tab.Put(k, ts)
					want[k] = ts
				case x < 95:
					tab.Delete(k)
					delete(want, k)
				case x < 96:
					floor := int64(i - 500)
					tab.DeleteFunc(func(_ uint64, ts int64) bool { return ts < floor })
					for k, ts := range want {
						if ts < floor {
							delete(want, k)
						}
					}
				default:
					got, ok := tab.Get(k)
					w, wok := want[k]
					require.Equal(t, wok, ok, "step %d key %d", i, k)
					require.Equal(t, w, got)
				}
				require.Equal(t, len(want), tab.Len())
			}
			assert.Equal(t, want, tab.entries())
			for k, ts := range want {
				got, ok := tab.Get(k)
				require.True(t, ok)
				require.Equal(t, ts, got)
			}
		})
	}
}

func TestIDTableJSONRoundTrip(t *testing.T) {
	var tab idTable
	for i := range 1000 {
		tab.Put(idKey(fmt.Sprint("id", i)), int64(1_700_000_000+i))
	}
	data, err := json.Marshal(&tab)
	require.NoError(t, err)
	var back idTable
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, tab.entries(), back.entries())
	// About 21 bytes per id, whatever the ids' length.
	assert.Less(t, len(data), 22*1000+10)

	for name, bad := range map[string]string{
		"not base64":   `"!!"`,
		"a torn entry": `"AAAAAAAAAAAAAAAAAA=="`,
		"a zero key":   `"AAAAAAAAAAAAAAAAAAAAAA=="`,
		"not a string": `{}`,
	} {
		assert.Error(t, json.Unmarshal([]byte(bad), &back), name)
	}
}

// A state written in version 2 (the dedupe set as session ids, in the
// snapshot and in the journal after it) loads with every id remembered,
// and is rewritten in the current format at the next save.
func TestVersion2StateLoads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	snapshot := `{"version":2,"app":"test","identity":"id","gen":"g1","seq":1,"saved_at":"2026-11-20T12:00:00Z",` +
		`"scalars":{"initialized":true,"started":1795175000,"floor":1795170000,"watermark":1795175940,"last_total":3,"abandoned":0,"billing":{}},` +
		`"duration_buckets":[5,15,30,60,120,300,600,900,1800,3600,7200,10800,14400,21600],` +
		`"participant_buckets":[1,2,3,4,5,8,10,15,20,30,50,100],` +
		`"totals":[{"labels":{"call_type":"audio","mode":"call","receiver_type":"user"},"totals":{"calls":{"ended":2},"participants":{}}}],` +
		`"done":{"v1.us.app.a":1795175900,"v1.us.app.b":1795175940},"undated":{"v1.us.app.u":1},"tracked":{}}`
	require.NoError(t, os.WriteFile(path, []byte(snapshot), 0o600))
	rec := `{"gen":"g1","seq":2,"at":1795176000,"done":{"v1.us.app.c":1795175990},"done_del":["v1.us.app.a"],"undated":{"v1.us.app.v":2}}`
	line, err := journalLine(mustRecord(t, rec))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+".journal", line, 0o600))

	s, l, recovered, err := openStore(path, "test", "id", log.NewNopLogger(), t0)
	require.NoError(t, err)
	require.False(t, recovered)
	for id, want := range map[string]bool{"v1.us.app.a": false, "v1.us.app.b": true, "v1.us.app.c": true,
		"v1.us.app.u": true, "v1.us.app.v": true, "v1.us.app.d": false} {
		assert.Equal(t, want, l.isDone(id), id)
	}
	assert.Equal(t, 4, l.Remembered())
	assert.Equal(t, uint64(2), l.totals[Labels{CallType: "audio", Mode: "call", ReceiverType: "user"}].Calls["ended"])

	require.True(t, s.needSnapshot, "an old format is rewritten")
	require.NoError(t, s.save(l, t0))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Regexp(t, `^\{"version":3,`, string(data))
	assert.NotContains(t, string(data), "v1.us.app.b", "the ids are stored as keys")
	_, again, _, err := openStore(path, "test", "id", log.NewNopLogger(), t0)
	require.NoError(t, err)
	assert.Equal(t, l.done.entries(), again.done.entries())
	assert.Equal(t, l.undated, again.undated)
}

func mustRecord(t *testing.T, s string) *journalRecord {
	var r journalRecord
	require.NoError(t, json.Unmarshal([]byte(s), &r))
	return &r
}

// A timestamp is kept in 32 unsigned bits: every time until 2106 exactly,
// a later one as that limit (kept longer, never dropped sooner).
func TestIDTableTimestamps(t *testing.T) {
	var tab idTable
	for k, ts := range map[uint64]int64{1: 1, 2: 1_764_892_800, 3: math.MaxUint32, 4: math.MaxUint32 + 1, 5: math.MaxInt64} {
		tab.Put(k, ts)
		got, ok := tab.Get(k)
		require.True(t, ok)
		assert.Equal(t, min(ts, math.MaxUint32), got, "key %d", k)
	}
}
