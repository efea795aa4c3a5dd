package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Log appends records to an audit log file.
//
// Appends are serialized, each line is written with one write(2) to a file
// opened with O_APPEND, and Append returns only after an fsync covering
// the line: a record the proxy acted on survives a crash. An fsync costs
// about 1.8 ms on this project's 2-core CI machines (BenchmarkAppend; the
// write alone is about 5 µs), so concurrent Appends share fsyncs (group
// commit): each waits for the first fsync that starts after its write, and
// throughput grows with concurrency while each audited action still waits
// about one fsync (BenchmarkAppendParallel).
//
// One process writes a log at a time: OpenFile takes an exclusive lock on
// the file (flock) and refuses a file another process holds.
type Log struct {
	path string
	now  func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
	seq  uint64
	prev string
	err  error // sticky: set when the file's state is unknown

	// syncMu serializes fsyncs; synced is the last seq known on disk.
	// Lock order: syncMu, then mu.
	syncMu sync.Mutex
	synced uint64
}

// OpenFile opens the audit log at path for appending, creating it with
// mode 0600 when absent. An existing log continues its chain: OpenFile
// checks its last two lines and refuses to continue a file whose tail does
// not verify (edited, cut short, or not an audit log), with an error that
// says to run mcp-proxy audit verify. Verifying the whole file is left to
// that command, so opening a large log stays fast.
func OpenFile(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: log %s is in use by another process (another mcp-proxy with the same audit log?): %w", path, err)
	}
	l := &Log{path: path, now: time.Now, f: f, prev: Genesis}
	if err := l.readTail(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// tailWindow is how much of the file's end OpenFile reads to find the last
// two lines.
const tailWindow = 2*MaxLineSize + 2

func (l *Log) readTail() error {
	st, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.size = st.Size()
	if l.size == 0 {
		return nil
	}
	off := max(0, l.size-tailWindow)
	buf := make([]byte, l.size-off)
	if _, err := l.f.ReadAt(buf, off); err != nil && err != io.EOF {
		return fmt.Errorf("audit: reading the end of %s: %w", l.path, err)
	}
	refuse := func(why string) error {
		return fmt.Errorf("audit: log %s cannot be continued: %s; run mcp-proxy audit verify %s, then move the file aside (keep it as evidence) so a new log starts",
			l.path, why, l.path)
	}
	if buf[len(buf)-1] != '\n' {
		return refuse("its last line is incomplete (cut short, or a write did not finish)")
	}
	lines := bytes.Split(buf[:len(buf)-1], []byte{'\n'})
	if off > 0 {
		lines = lines[1:] // the first piece may be the end of a longer line
	}
	last := lines[len(lines)-1]
	var prevSeq uint64
	prevHash := Genesis
	if len(lines) >= 2 {
		// The line before the last is checked for its own hash only: its
		// predecessor is not read.
		e, p := checkAlone(lines[len(lines)-2])
		if p != nil {
			return refuse("the line before the last: " + string(p.Kind) + ": " + p.Detail)
		}
		prevSeq, prevHash = e.Seq, e.Hash
	} else if off > 0 {
		return refuse("its last line is longer than an audit line can be")
	}
	e, p := check(last, prevSeq, prevHash)
	if p != nil {
		return refuse("its last line: " + string(p.Kind) + ": " + p.Detail)
	}
	l.seq, l.prev = e.Seq, e.Hash
	return nil
}

// checkAlone checks a line's own hash and form, trusting its seq and prev.
func checkAlone(line []byte) (*Entry, *Problem) {
	i := bytes.LastIndex(line, []byte(hashMember))
	if i < 0 {
		return nil, &Problem{Kind: Malformed, Detail: `the line does not end with its "hash"`}
	}
	var b struct {
		Seq  uint64 `json:"seq"`
		Prev string `json:"prev"`
	}
	if err := json.Unmarshal(append(line[:i:i], '}'), &b); err != nil || b.Seq == 0 {
		return nil, &Problem{Kind: Malformed, Detail: "not an audit line"}
	}
	return check(line, b.Seq-1, b.Prev)
}

// Append writes r as the next line of the chain and returns once it is
// synced to disk. A zero r.Time is set to now. An error means the action
// must be treated as not audited. After a failed write the partial line is cut
// off again, so the chain stays valid; if even that fails, or fsync fails
// (the kernel may have dropped the data), the log refuses every later
// Append with the same error and the proxy must stop auditing actions
// until it is restarted.
func (l *Log) Append(r Record) error {
	if r.Action == "" || r.Decision == "" {
		return errors.New("audit: a record needs an action and a decision")
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	l.mu.Lock()
	if err := l.writable(); err != nil {
		l.mu.Unlock()
		return err
	}
	line, hash, err := encode(body{Seq: l.seq + 1, Record: r, Prev: l.prev})
	if err == nil && len(line) > MaxLineSize {
		err = fmt.Errorf("a record of %d bytes is longer than the %d an audit line may have; shorten its detail", len(line), MaxLineSize)
	}
	if err != nil {
		l.mu.Unlock()
		return fmt.Errorf("audit: %w", err)
	}
	n, err := l.f.Write(line)
	if err != nil {
		if n > 0 {
			if terr := l.f.Truncate(l.size); terr != nil {
				l.err = fmt.Errorf("audit: log %s: a write failed (%v) and its partial line could not be removed (%v); the log accepts no more records", l.path, err, terr)
			}
		}
		l.mu.Unlock()
		return fmt.Errorf("audit: writing to %s: %w", l.path, err)
	}
	l.size += int64(n)
	l.seq, l.prev = l.seq+1, hash
	seq := l.seq
	l.mu.Unlock()
	return l.syncTo(seq)
}

// syncTo returns once line seq is on disk, running an fsync unless one that
// started after the line was written has already finished.
func (l *Log) syncTo(seq uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	f, upto, err := l.f, l.seq, l.err
	l.mu.Unlock()
	switch {
	case l.synced >= seq:
		return nil
	case err != nil:
		return err
	case f == nil:
		return fmt.Errorf("audit: log %s was closed before the record was synced", l.path)
	}
	if err := f.Sync(); err != nil {
		l.mu.Lock()
		l.err = fmt.Errorf("audit: log %s: fsync failed (%v); the log accepts no more records", l.path, err)
		err = l.err
		l.mu.Unlock()
		return err
	}
	l.synced = upto
	return nil
}

func (l *Log) writable() error {
	if l.err != nil {
		return l.err
	}
	if l.f == nil {
		return fmt.Errorf("audit: log %s is closed", l.path)
	}
	return nil
}

// Close closes the file after any fsync in progress. Later Appends fail.
func (l *Log) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	var err error
	if l.synced < l.seq {
		if err = l.f.Sync(); err == nil {
			l.synced = l.seq
		}
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
