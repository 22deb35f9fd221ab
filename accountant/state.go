package accountant

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// StateVersion is the format version written first in every state file.
// Version 1 files (a snapshot only, without identity) and version 2 files
// (the dedupe set as session ids, not keys) are still read.
const StateVersion = 3

// The state of an app is two files: a snapshot (FILE), written atomically
// now and then, and a journal (FILE.journal) that each poll appends the
// keys it changed to. A poll's write is therefore proportional to what it
// changed, not to the size of the dedupe set. The journal is compacted into
// a new snapshot once it outgrows the snapshot (or 256 KiB), so the bytes
// written per poll stay at most about twice the size of its changes.
//
// Each journal line is "CRC32 JSON\n". A line whose checksum fails, or that
// has no newline, is a write that was torn by a crash or a full disk: it
// was never reported as persisted, so replay stops there. Records carry
// the generation of the snapshot they follow and a sequence number, so a
// journal left over from an older snapshot or another identity is never
// replayed on a newer one.

// stateHeader is what every format since version 2 shares: who wrote the
// file, when, and everything but the dedupe set.
type stateHeader struct {
	Version            int                 `json:"version"`
	App                string              `json:"app"`
	Identity           string              `json:"identity"`
	Gen                string              `json:"gen"`
	Seq                uint64              `json:"seq"`
	SavedAt            time.Time           `json:"saved_at"`
	Scalars            ledgerScalars       `json:"scalars"`
	DurationBuckets    []float64           `json:"duration_buckets"`
	ParticipantBuckets []float64           `json:"participant_buckets"`
	Totals             []labeledTotals     `json:"totals"`
	Tracked            map[string]*Tracked `json:"tracked"`
}

type stateFile struct {
	stateHeader
	Done    *idTable          `json:"done"`
	Undated map[uint64]uint64 `json:"undated"`
}

// stateFileV2 is the format that kept the dedupe set as session ids.
type stateFileV2 struct {
	stateHeader
	Done    map[string]int64  `json:"done"`
	Undated map[string]uint64 `json:"undated"`
}

// stateFileV1 is the format of the first release, read for migration.
type stateFileV1 struct {
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

// journalRecord holds the current value of every key a poll changed, or
// its removal. Applying it twice gives the same ledger as applying it once.
// The dedupe set's entries are keyed by idKey; a journal written by
// version 2 keyed them by session id (the *ID fields), read for migration.
type journalRecord struct {
	Gen          string              `json:"gen"`
	Seq          uint64              `json:"seq"`
	At           int64               `json:"at"`
	Scalars      *ledgerScalars      `json:"scalars,omitempty"`
	Totals       []labeledTotals     `json:"totals,omitempty"`
	Done         map[uint64]int64    `json:"done_keys,omitempty"`
	DoneDel      []uint64            `json:"done_keys_del,omitempty"`
	Undated      map[uint64]uint64   `json:"undated_keys,omitempty"`
	UndatedDel   []uint64            `json:"undated_keys_del,omitempty"`
	Tracked      map[string]*Tracked `json:"tracked,omitempty"`
	TrackedDel   []string            `json:"tracked_del,omitempty"`
	DoneID       map[string]int64    `json:"done,omitempty"`
	DoneIDDel    []string            `json:"done_del,omitempty"`
	UndatedID    map[string]uint64   `json:"undated,omitempty"`
	UndatedIDDel []string            `json:"undated_del,omitempty"`
}

func sortedTotals(m map[Labels]*Totals, keys func(yield func(Labels) bool)) []labeledTotals {
	var out []labeledTotals
	for lb := range keys {
		if t := m[lb]; t != nil {
			out = append(out, labeledTotals{lb, t})
		}
	}
	sort.Slice(out, func(i, j int) bool { return labelsLess(out[i].Labels, out[j].Labels) })
	return out
}

func labelsLess(a, b Labels) bool {
	if a.CallType != b.CallType {
		return a.CallType < b.CallType
	}
	if a.Mode != b.Mode {
		return a.Mode < b.Mode
	}
	return a.ReceiverType < b.ReceiverType
}

// record builds the journal record of the ledger's changes.
func (l *Ledger) record(gen string, seq uint64, at time.Time) *journalRecord {
	r := &journalRecord{Gen: gen, Seq: seq, At: at.Unix()}
	if l.scalarsChanged() {
		sc := l.ledgerScalars
		r.Scalars = &sc
	}
	r.Totals = sortedTotals(l.totals, func(yield func(Labels) bool) {
		for lb := range l.changes.totals {
			if !yield(lb) {
				return
			}
		}
	})
	for k := range l.changes.done {
		if ts, ok := l.done.Get(k); ok {
			if r.Done == nil {
				r.Done = map[uint64]int64{}
			}
			r.Done[k] = ts
		} else {
			r.DoneDel = append(r.DoneDel, k)
		}
	}
	for k := range l.changes.undated {
		if s, ok := l.undated[k]; ok {
			if r.Undated == nil {
				r.Undated = map[uint64]uint64{}
			}
			r.Undated[k] = s
		} else {
			r.UndatedDel = append(r.UndatedDel, k)
		}
	}
	for id := range l.changes.tracked {
		if t, ok := l.tracked[id]; ok {
			if r.Tracked == nil {
				r.Tracked = map[string]*Tracked{}
			}
			tc := *t
			r.Tracked[id] = &tc
		} else {
			r.TrackedDel = append(r.TrackedDel, id)
		}
	}
	slices.Sort(r.DoneDel)
	slices.Sort(r.UndatedDel)
	slices.Sort(r.TrackedDel)
	return r
}

// apply replays a journal record onto the ledger.
func (l *Ledger) apply(r *journalRecord) error {
	if r.Scalars != nil {
		l.ledgerScalars = *r.Scalars
	}
	for _, lt := range r.Totals {
		if lt.Totals == nil || lt.Totals.Calls == nil || lt.Totals.Participants == nil {
			return errors.New("journal has an incomplete totals entry")
		}
		lt.Totals.fillNative()
		l.totals[lt.Labels] = lt.Totals
	}
	for k, ts := range r.Done {
		l.done.Put(k, ts)
	}
	for _, k := range r.DoneDel {
		l.done.Delete(k)
	}
	for k, s := range r.Undated {
		l.undated[k] = s
	}
	for _, k := range r.UndatedDel {
		delete(l.undated, k)
	}
	for id, ts := range r.DoneID {
		l.done.Put(idKey(id), ts)
	}
	for _, id := range r.DoneIDDel {
		l.done.Delete(idKey(id))
	}
	for id, s := range r.UndatedID {
		l.undated[idKey(id)] = s
	}
	for _, id := range r.UndatedIDDel {
		delete(l.undated, idKey(id))
	}
	for id, t := range r.Tracked {
		if t == nil {
			return errors.New("journal has an empty tracked entry")
		}
		l.tracked[id] = t
	}
	for _, id := range r.TrackedDel {
		delete(l.tracked, id)
	}
	return nil
}

func (l *Ledger) clearChanges() { l.changes = changes{saved: l.ledgerScalars} }

// encodeSnapshot serialises the whole ledger.
func encodeSnapshot(app, identity, gen string, seq uint64, l *Ledger, now time.Time) ([]byte, error) {
	return json.Marshal(stateFile{stateHeader: l.header(app, identity, gen, seq, now), Done: &l.done, Undated: l.undated})
}

// header is the part of a snapshot that is not the dedupe set.
func (l *Ledger) header(app, identity, gen string, seq uint64, now time.Time) stateHeader {
	return stateHeader{
		Version: StateVersion, App: app, Identity: identity, Gen: gen, Seq: seq, SavedAt: now.UTC(),
		Scalars:         l.ledgerScalars,
		DurationBuckets: DurationBuckets, ParticipantBuckets: ParticipantBuckets,
		Tracked: l.tracked,
		Totals: sortedTotals(l.totals, func(yield func(Labels) bool) {
			for lb := range l.totals {
				if !yield(lb) {
					return
				}
			}
		}),
	}
}

// errIdentity is a state file of the same app name but another identity.
type errIdentity struct{ file, want string }

func (e *errIdentity) Error() string {
	return fmt.Sprintf("state file belongs to %s, not to %s", e.file, e.want)
}

// decodeSnapshot parses a state file strictly: unknown fields, another
// version, another app or other histogram buckets are errors; another
// identity is an *errIdentity.
func decodeSnapshot(data []byte, app, identity string) (*Ledger, *stateFile, error) {
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, nil, fmt.Errorf("not a JSON state file: %w", err)
	}
	switch probe.Version {
	case 1:
		return decodeV1(data, app)
	case 2:
		return decodeV2(data, app, identity)
	case StateVersion:
	default:
		return nil, nil, fmt.Errorf("state file version %d, want %d", probe.Version, StateVersion)
	}
	sf, err := decodeStrict[stateFile](data)
	if err != nil {
		return nil, nil, err
	}
	if err := checkHeader(sf.App, sf.Identity, sf.DurationBuckets, sf.ParticipantBuckets, app, identity); err != nil {
		return nil, nil, err
	}
	l := NewLedger()
	l.ledgerScalars = sf.Scalars
	if sf.Done != nil {
		l.done = *sf.Done
	}
	if err := l.adopt(sf.Totals, nil, sf.Undated, sf.Tracked); err != nil {
		return nil, nil, err
	}
	return l, &sf, nil
}

// decodeStrict parses one state file format, refusing unknown fields.
func decodeStrict[T any](data []byte) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("decoding state: %w", err)
	}
	return v, nil
}

// checkHeader refuses a state file of another app, identity or histogram
// buckets; another identity is an *errIdentity.
func checkHeader(fileApp, fileIdentity string, durations, participants []float64, app, identity string) error {
	if fileApp != app {
		return fmt.Errorf("state file is for app %q, not %q", fileApp, app)
	}
	if fileIdentity != identity {
		return &errIdentity{file: fileIdentity, want: identity}
	}
	if !slices.Equal(durations, DurationBuckets) || !slices.Equal(participants, ParticipantBuckets) {
		return errors.New("state file has other histogram buckets")
	}
	return nil
}

// decodeV2 reads a version-2 state file, whose dedupe set holds session ids
// rather than their keys.
func decodeV2(data []byte, app, identity string) (*Ledger, *stateFile, error) {
	v2, err := decodeStrict[stateFileV2](data)
	if err != nil {
		return nil, nil, err
	}
	if err := checkHeader(v2.App, v2.Identity, v2.DurationBuckets, v2.ParticipantBuckets, app, identity); err != nil {
		return nil, nil, err
	}
	l := NewLedger()
	l.ledgerScalars = v2.Scalars
	undated := map[uint64]uint64{}
	for id, s := range v2.Undated {
		undated[idKey(id)] = s
	}
	if err := l.adopt(v2.Totals, v2.Done, undated, v2.Tracked); err != nil {
		return nil, nil, err
	}
	return l, &stateFile{stateHeader: stateHeader{Version: 2, App: v2.App, Identity: v2.Identity, Gen: v2.Gen, Seq: v2.Seq, SavedAt: v2.SavedAt}}, nil
}

func decodeV1(data []byte, app string) (*Ledger, *stateFile, error) {
	v1, err := decodeStrict[stateFileV1](data)
	if err != nil {
		return nil, nil, err
	}
	// Version 1 had no identity; it is taken as the current one.
	if err := checkHeader(v1.App, "", v1.DurationBuckets, v1.ParticipantBuckets, app, ""); err != nil {
		return nil, nil, err
	}
	l := NewLedger()
	l.Initialized, l.Floor, l.Watermark, l.LastTotal, l.Abandoned = v1.Initialized, v1.Floor, v1.Watermark, v1.LastTotal, v1.Abandoned
	l.LastTotal = 0 // version 1 kept no count of learned ids to compare it with
	if err := l.adopt(v1.Totals, v1.Done, nil, v1.Tracked); err != nil {
		return nil, nil, err
	}
	return l, &stateFile{stateHeader: stateHeader{Version: 1, App: v1.App, SavedAt: v1.SavedAt}}, nil
}

// adopt takes a decoded state's parts; done is keyed by session id (the
// older formats).
func (l *Ledger) adopt(totals []labeledTotals, done map[string]int64, undated map[uint64]uint64, tracked map[string]*Tracked) error {
	for _, lt := range totals {
		if lt.Totals == nil || lt.Totals.Calls == nil || lt.Totals.Participants == nil {
			return errors.New("state file has an incomplete totals entry")
		}
		lt.Totals.fillNative()
		l.totals[lt.Labels] = lt.Totals
	}
	for id, ts := range done {
		l.done.Put(idKey(id), ts)
	}
	if undated != nil {
		l.undated = undated
	}
	for id, t := range tracked {
		if t == nil {
			return errors.New("state file has an empty tracked entry")
		}
		l.tracked[id] = t
	}
	return nil
}

// journalMinLimit is the journal size below which it is never compacted.
const journalMinLimit = 256 << 10

// store persists one app's ledger: the snapshot and its journal.
type store struct {
	path, journal string
	app, identity string
	gen           string
	seq           uint64 // of the last record persisted, snapshot or journal
	snapshotSize  int64
	journalSize   int64
	// needSnapshot: the next save writes a snapshot. Set for a new ledger,
	// after any failed write (the journal may end in a torn line, which
	// nothing may follow) and after a torn journal was found at start.
	needSnapshot bool
	// lastWrite is the time of the last successful write (the file's, at
	// start); zero when there was none.
	lastWrite time.Time
	written   uint64 // bytes written, snapshots and journal
	logger    log.Logger
	// fault, when set, fails writes as a full disk would (tests).
	fault func() error
}

func newGen() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// CheckStateFile reports, without touching anything, whether path can
// hold a state file, with what to do when not: it is a file this process
// may read and write, or nothing, in a directory it may write.
func CheckStateFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("state file %s is a directory: name a file in it, e.g. %s", path, filepath.Join(path, "state.json"))
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("state file %s is not a regular file", path)
	case err == nil && !accessible(path, accessRead|accessWrite):
		return fmt.Errorf("state file %s cannot be read and written by this process (uid %d): fix its owner or mode", path, os.Getuid())
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("state file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	fi, err = os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("state file %s: directory %s does not exist: create it, writable by this process (uid %d), or name a file in another directory", path, dir, os.Getuid())
	case err != nil:
		return fmt.Errorf("state file %s: its directory cannot be used: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("state file %s: %s is not a directory", path, dir)
	case !accessible(dir, accessWrite|accessExec):
		// The file is replaced by a rename, so the directory itself
		// must be writable, even when the file is.
		return fmt.Errorf("state file %s: directory %s is not writable by this process (uid %d): make it writable "+
			"(in a container, mount a writable volume there) or name a file in another directory", path, dir, os.Getuid())
	}
	return nil
}

// openStore restores a ledger from path (and its journal). A missing file
// is a first start. A file of another identity (another app id, base URL
// or onBehalfOf under the same name) is moved aside and the app starts as
// a first start. A file that cannot be decoded is moved aside, logged, and
// recovered is set. A file that cannot be read or moved aside is an error:
// it is never overwritten silently.
func openStore(path, app, identity string, logger log.Logger, now time.Time) (s *store, l *Ledger, recovered bool, err error) {
	s = &store{path: path, journal: path + ".journal", app: app, identity: identity, logger: logger}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s.fresh()
		return s, NewLedger(), false, nil
	}
	var sf *stateFile
	if err == nil {
		l, sf, err = decodeSnapshot(data, app, identity)
	}
	if err == nil {
		s.gen, s.seq, s.snapshotSize, s.lastWrite = sf.Gen, sf.Seq, int64(len(data)), sf.SavedAt
		if sf.Version >= 2 { // version 1 had no journal
			err = s.replay(l)
		}
		if err == nil && sf.Version != StateVersion {
			s.fresh() // rewrite in the current format
		}
		if err == nil {
			return s, l, false, nil
		}
	}
	var idErr *errIdentity
	if errors.As(err, &idErr) {
		if merr := s.moveAside("other-identity", now, err); merr != nil {
			return nil, nil, false, merr
		}
		s.fresh()
		return s, NewLedger(), false, nil
	}
	if merr := s.moveAside("corrupt", now, err); merr != nil {
		return nil, nil, false, merr
	}
	s.fresh()
	return s, NewLedger(), true, nil
}

// fresh starts a new generation: the next save writes a snapshot.
func (s *store) fresh() {
	s.gen, s.seq, s.needSnapshot = newGen(), 0, true
	s.snapshotSize, s.journalSize = 0, 0
}

// moveAside renames the snapshot (and its journal, if any) to
// FILE.WHY-UNIXTIME and logs why.
func (s *store) moveAside(why string, now time.Time, cause error) error {
	suffix := fmt.Sprintf(".%s-%d", why, now.Unix())
	// Never over an earlier file moved aside in the same second.
	for n := 2; exists(s.path+suffix) || exists(s.journal+suffix); n++ {
		suffix = fmt.Sprintf(".%s-%d-%d", why, now.Unix(), n)
	}
	aside := s.path + suffix
	if err := os.Rename(s.path, aside); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state file %s is unusable (%v) and could not be moved aside: %w", s.path, cause, err)
	}
	if err := os.Rename(s.journal, s.journal+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		// A stale journal is harmless: its records belong to another
		// generation and are never replayed.
		level.Warn(s.logger).Log("msg", "Could not move the state journal aside", "file", s.journal, "err", err)
	}
	msg := "State file is unusable; moved it aside and starting fresh"
	if why == "other-identity" {
		msg = "State file belongs to another app identity; moved it aside and starting as a first start (history is not counted)"
	}
	level.Error(s.logger).Log("msg", msg, "file", s.path, "moved_to", aside, "err", cause)
	return nil
}

// replay applies the journal's records that follow the snapshot.
func (s *store) replay(l *Ledger) error {
	f, err := os.Open(s.journal)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var offset int64
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			if len(line) > 0 {
				s.tornAt(offset, "a line without its end")
			}
			break
		}
		if err != nil {
			return fmt.Errorf("reading journal: %w", err)
		}
		rec, ok := parseJournalLine(line)
		if !ok {
			s.tornAt(offset, "a line whose checksum fails")
			break
		}
		offset += int64(len(line))
		if rec.Gen != s.gen || rec.Seq <= s.seq {
			continue // before the snapshot, or from an older generation
		}
		if rec.Seq != s.seq+1 {
			s.tornAt(offset, "a gap in the sequence")
			break
		}
		if err := l.apply(rec); err != nil {
			return err
		}
		s.seq = rec.Seq
		s.lastWrite = time.Unix(rec.At, 0)
	}
	s.journalSize = offset
	return nil
}

func (s *store) tornAt(offset int64, what string) {
	level.Warn(s.logger).Log("msg", "State journal ends in a torn write, which was never reported as saved; it is ignored",
		"file", s.journal, "offset", offset, "found", what)
	s.needSnapshot = true
}

func parseJournalLine(line []byte) (*journalRecord, bool) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	sum, body, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return nil, false
	}
	want, err := strconv.ParseUint(string(sum), 16, 32)
	if err != nil || uint32(want) != crc32.ChecksumIEEE(body) {
		return nil, false
	}
	var rec journalRecord
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&rec) != nil {
		return nil, false
	}
	return &rec, true
}

func journalLine(rec *journalRecord) ([]byte, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	line := make([]byte, 0, len(body)+10)
	line = fmt.Appendf(line, "%08x ", crc32.ChecksumIEEE(body))
	line = append(line, body...)
	return append(line, '\n'), nil
}

// save persists the ledger's changes: a journal record, or a snapshot when
// one is due. On success the ledger's changes are cleared. On failure the
// next save writes a whole snapshot, which needs no record of changes: they
// are cleared too, so that a disk full for days holds no more memory than
// a disk that works.
func (s *store) save(l *Ledger, now time.Time) (err error) {
	if !l.Changed() && !s.needSnapshot {
		return nil
	}
	defer func() {
		if err != nil {
			s.needSnapshot = true
			l.clearChanges()
		}
	}()
	if s.fault != nil {
		if err := s.fault(); err != nil {
			s.needSnapshot = true
			return err
		}
	}
	if !s.needSnapshot && !l.changes.overflow {
		line, err := journalLine(l.record(s.gen, s.seq+1, now))
		if err != nil {
			return err
		}
		if s.journalSize+int64(len(line)) <= max(s.snapshotSize, journalMinLimit) {
			if err := s.append(line); err != nil {
				s.needSnapshot = true
				return err
			}
			s.seq++
			s.journalSize += int64(len(line))
			s.done(l, len(line), now)
			return nil
		}
	}
	data, err := encodeSnapshot(s.app, s.identity, s.gen, s.seq+1, l, now)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path, data); err != nil {
		return err
	}
	s.seq++
	s.snapshotSize, s.needSnapshot = int64(len(data)), false
	// The journal's records are all in the snapshot now. If emptying it
	// fails, they are skipped at replay by their sequence numbers.
	if err := os.Truncate(s.journal, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		level.Warn(s.logger).Log("msg", "Could not empty the state journal after a snapshot", "file", s.journal, "err", err)
	}
	s.journalSize = 0
	s.done(l, len(data), now)
	return nil
}

func (s *store) done(l *Ledger, n int, now time.Time) {
	l.clearChanges()
	s.written += uint64(n)
	s.lastWrite = now
}

// append adds a line to the journal and syncs it. On failure the journal is
// cut back to where it was, so no torn line stays behind when that works.
func (s *store) append(line []byte) error {
	f, err := os.OpenFile(s.journal, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(line); err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Truncate(s.journalSize)
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if s.journalSize == 0 {
		syncDir(filepath.Dir(s.journal))
	}
	return nil
}

// startOver is called when a running app's identity changed by a reload:
// the files belong to the old identity, so they are moved aside and the
// next save starts a new generation.
func (s *store) startOver(identity string, now time.Time) {
	if _, err := os.Stat(s.path); err == nil {
		if err := s.moveAside("other-identity", now, &errIdentity{file: s.identity, want: identity}); err != nil {
			level.Error(s.logger).Log("msg", "Could not move the old identity's state aside; it will be overwritten", "err", err)
		}
	}
	s.identity = identity
	s.fresh()
	// The app's counters start over, this store's among them.
	s.lastWrite, s.written = time.Time{}, 0
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
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
	syncDir(dir)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
