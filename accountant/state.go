package accountant

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// StateVersion is the format version written first in every state file.
const StateVersion = 1

type stateFile struct {
	Version            int                 `json:"version"`
	App                string              `json:"app"`
	SavedAt            time.Time           `json:"saved_at"`
	Initialized        bool                `json:"initialized"`
	Floor              int64               `json:"floor"`
	Watermark          int64               `json:"watermark"`
	LastTotal          int                 `json:"last_total"`
	Abandoned          uint64              `json:"abandoned"`
	DurationBuckets    []float64           `json:"duration_buckets"`
	ParticipantBuckets []float64           `json:"participant_buckets"`
	Totals             []labeledTotals     `json:"totals"`
	Done               map[string]int64    `json:"done"`
	Tracked            map[string]*Tracked `json:"tracked"`
}

type labeledTotals struct {
	Labels Labels  `json:"labels"`
	Totals *Totals `json:"totals"`
}

// encodeState serialises the ledger.
func encodeState(app string, l *Ledger, now time.Time) ([]byte, error) {
	sf := stateFile{
		Version: StateVersion, App: app, SavedAt: now.UTC(),
		Initialized: l.Initialized, Floor: l.Floor, Watermark: l.Watermark,
		LastTotal: l.LastTotal, Abandoned: l.Abandoned,
		DurationBuckets: DurationBuckets, ParticipantBuckets: ParticipantBuckets,
		Done: l.done, Tracked: l.tracked,
	}
	for lb, t := range l.totals {
		sf.Totals = append(sf.Totals, labeledTotals{lb, t})
	}
	sort.Slice(sf.Totals, func(i, j int) bool {
		a, b := sf.Totals[i].Labels, sf.Totals[j].Labels
		return a.CallType+a.Mode+a.ReceiverType < b.CallType+b.Mode+b.ReceiverType
	})
	return json.Marshal(sf)
}

// decodeState parses a state file strictly: unknown fields, another version,
// another app or other histogram buckets are errors.
func decodeState(data []byte, app string) (*Ledger, error) {
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON state file: %w", err)
	}
	if probe.Version != StateVersion {
		return nil, fmt.Errorf("state file version %d, want %d", probe.Version, StateVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sf stateFile
	if err := dec.Decode(&sf); err != nil {
		return nil, fmt.Errorf("decoding state: %w", err)
	}
	if sf.App != app {
		return nil, fmt.Errorf("state file is for app %q, not %q", sf.App, app)
	}
	if !slices.Equal(sf.DurationBuckets, DurationBuckets) || !slices.Equal(sf.ParticipantBuckets, ParticipantBuckets) {
		return nil, errors.New("state file has other histogram buckets")
	}
	l := NewLedger()
	l.Initialized, l.Floor, l.Watermark, l.LastTotal, l.Abandoned = sf.Initialized, sf.Floor, sf.Watermark, sf.LastTotal, sf.Abandoned
	for _, lt := range sf.Totals {
		if lt.Totals == nil || lt.Totals.Calls == nil || lt.Totals.Participants == nil {
			return nil, errors.New("state file has an incomplete totals entry")
		}
		l.totals[lt.Labels] = lt.Totals
	}
	if sf.Done != nil {
		l.done = sf.Done
	}
	for id, t := range sf.Tracked {
		if t == nil {
			return nil, errors.New("state file has an empty tracked entry")
		}
		l.tracked[id] = t
	}
	return l, nil
}

// loadState restores a ledger from path. A missing file is a fresh start. A
// file that cannot be decoded is moved aside (the error log names both
// paths) and the ledger starts fresh, with recovered set so that a metric can
// say so. A file that cannot be read or moved aside is an error: it is never
// overwritten silently.
func loadState(path, app string, logger log.Logger, now time.Time) (l *Ledger, recovered bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return NewLedger(), false, nil
	}
	if err == nil {
		l, err = decodeState(data, app)
		if err == nil {
			return l, false, nil
		}
	}
	aside := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, false, fmt.Errorf("state file %s is unusable (%v) and could not be moved aside: %w", path, err, rerr)
	}
	level.Error(logger).Log("msg", "State file is unusable; moved it aside and starting fresh", "file", path, "moved_to", aside, "err", err)
	return NewLedger(), true, nil
}

// saveState writes the ledger atomically: a temporary file in the same
// directory, fsync, rename over the old file, fsync of the directory.
func saveState(path, app string, l *Ledger, now time.Time) error {
	data, err := encodeState(app, l, now)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
