// Package audit is the proxy's tamper-evident audit log: one JSON line per
// audited action, each chained to the one before it by a SHA-256 hash, so
// that an edited, removed, inserted or reordered line is found by Verify
// (and by mcp-proxy audit verify FILE).
//
// A line is the canonical JSON (encoding/json of Entry, fields in this
// order) of
//
//	{"seq":N,"time":...,"user":...,"route":...,"binding":...,"binding_key_id":...,
//	 "action":...,"decision":...,"request_id":...,"detail":{...},"prev":H(N-1),"hash":H(N)}
//
// where H(N) is the lowercase hex SHA-256 of H(N-1), a newline, and the
// line's text without its "hash" member (the text up to ,"hash" followed by
// the closing brace). H(0) is 64 zeros, and seq counts from 1.
//
// What the chain proves: any change to a line, and any removal, insertion
// or reordering of lines, breaks it at that line. What it cannot prove on
// its own: the hash is keyless, so someone who can rewrite the file can cut
// it short, or rewrite every line from some point on with fresh hashes.
// Verify reports the last line's hash; keep it (or ship the log) somewhere
// the proxy's host cannot write, and compare, to catch that too.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Record is one audited action. Every field is written, empty or not,
// except Detail when it is empty. No field may hold a secret (a token, a
// code, a password): the log is for reading.
type Record struct {
	// Time is when the action happened; zero means when it is appended.
	// It is written in UTC with nanoseconds (RFC 3339).
	Time time.Time `json:"time"`
	// User is the acting user (the identity provider's subject).
	User string `json:"user"`
	// Route is the route's host.
	Route string `json:"route"`
	// Binding is the token binding mode: per_user, per_session or
	// service_account.
	Binding string `json:"binding"`
	// BindingKeyID identifies the upstream token used: KeyID of the
	// binding key.
	BindingKeyID string `json:"binding_key_id"`
	// Action is what was done, a stable snake_case name such as
	// token_used, token_acquired, token_refreshed or token_revoked.
	// Required.
	Action string `json:"action"`
	// Decision is the outcome, such as allowed or denied. Required.
	Decision string `json:"decision"`
	// RequestID is the proxy's request id, also in its logs and responses.
	RequestID string `json:"request_id"`
	// Detail holds further facts as strings; never a secret.
	Detail map[string]string `json:"detail,omitempty"`
}

// Entry is a Record with its place in the chain, as written on one line.
type Entry struct {
	// Seq numbers the lines from 1.
	Seq uint64 `json:"seq"`
	Record
	// Prev is the hash of the line before (64 zeros for the first).
	Prev string `json:"prev"`
	// Hash chains this line to Prev; see the package documentation.
	Hash string `json:"hash"`
}

// body is an Entry without its hash: what the hash covers.
type body struct {
	Seq uint64 `json:"seq"`
	Record
	Prev string `json:"prev"`
}

// Genesis is the prev of the first line.
var Genesis = strings.Repeat("0", 64)

// KeyID returns a short identifier of a binding key for the audit log: the
// first 16 hex digits of its SHA-256. It tells lines about the same
// upstream token apart without writing the key itself.
func KeyID(bindingKey string) string {
	sum := sha256.Sum256([]byte(bindingKey))
	return hex.EncodeToString(sum[:8])
}

func chainHash(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

const hashMember = `,"hash":"`

// encode returns the line for b (with its newline) and its hash.
func encode(b body) ([]byte, string, error) {
	js, err := json.Marshal(b)
	if err != nil {
		return nil, "", err
	}
	hash := chainHash(b.Prev, js)
	line := make([]byte, 0, len(js)+len(hashMember)+len(hash)+3)
	line = append(line, js[:len(js)-1]...)
	line = append(line, hashMember...)
	line = append(line, hash...)
	line = append(line, '"', '}', '\n')
	return line, hash, nil
}

// Kind is what is wrong with a line.
type Kind string

// The kinds of problem Verify reports.
const (
	// Malformed: the line is not an audit line as mcp-proxy writes it
	// (not JSON, an unknown field, no hash, not in canonical form).
	Malformed Kind = "malformed"
	// Incomplete: the last line has no newline: it was cut short, or a
	// write did not finish.
	Incomplete Kind = "incomplete"
	// HashMismatch: the line's content does not match its hash: it was
	// edited.
	HashMismatch Kind = "hash mismatch"
	// SeqMismatch: the line's seq is not the previous line's plus one:
	// lines were removed, inserted or reordered.
	SeqMismatch Kind = "seq mismatch"
	// PrevMismatch: the line's prev is not the previous line's hash: it
	// does not follow that line (lines removed or reordered, or taken from
	// another log).
	PrevMismatch Kind = "prev mismatch"
)

// Problem is the first line that breaks the chain.
type Problem struct {
	// Line is the 1-based line number in the file.
	Line int
	Kind Kind
	// Detail says what was found and what it means.
	Detail string
}

func (p *Problem) Error() string { return fmt.Sprintf("line %d: %s: %s", p.Line, p.Kind, p.Detail) }

// Report is the result of Verify.
type Report struct {
	// Lines is the number of lines that verified, from the first: all of
	// them when Problem is nil.
	Lines int
	// Seq is the seq of the last good line.
	Seq uint64
	// LastHash is the hash of the last good line (Genesis for none).
	LastHash string
	// Problem is the first line that breaks the chain; nil when it is
	// intact.
	Problem *Problem
}

// Intact reports whether every line verified.
func (r Report) Intact() bool { return r.Problem == nil }

// MaxLineSize bounds a line; a longer one is malformed.
const MaxLineSize = 1 << 20

// Verify reads an audit log and checks its chain line by line, stopping at
// the first problem. The error is for failures to read; a broken chain is
// in Report.Problem.
func Verify(r io.Reader) (Report, error) {
	rep := Report{LastHash: Genesis}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err == io.EOF && len(line) == 0 {
			return rep, nil
		}
		if err != nil && err != io.EOF {
			if errors.Is(err, errLineTooLong) {
				rep.Problem = &Problem{Line: n, Kind: Malformed, Detail: fmt.Sprintf("the line is longer than %d bytes", MaxLineSize)}
				return rep, nil
			}
			return rep, err
		}
		if err == io.EOF {
			rep.Problem = &Problem{Line: n, Kind: Incomplete, Detail: "the last line ends without a newline: it was cut short, or a write did not finish"}
			return rep, nil
		}
		e, p := check(line[:len(line)-1], rep.Seq, rep.LastHash)
		if p != nil {
			p.Line = n
			rep.Problem = p
			return rep, nil
		}
		rep.Lines, rep.Seq, rep.LastHash = n, e.Seq, e.Hash
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line with its newline; at the end, what is
// left and io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > MaxLineSize {
			return nil, errLineTooLong
		}
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// check verifies one line (without its newline) against the previous
// line's seq and hash.
func check(line []byte, prevSeq uint64, prevHash string) (*Entry, *Problem) {
	i := bytes.LastIndex(line, []byte(hashMember))
	if i < 0 || len(line)-i != len(hashMember)+64+2 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, &Problem{Kind: Malformed, Detail: `the line does not end with its "hash"`}
	}
	hash := string(line[i+len(hashMember) : len(line)-2])
	raw := append(line[:i:i], '}')
	var b body
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, &Problem{Kind: Malformed, Detail: "not an audit line: " + err.Error()}
	}
	if dec.More() {
		return nil, &Problem{Kind: Malformed, Detail: "text after the JSON object"}
	}
	if got := chainHash(b.Prev, raw); got != hash {
		return nil, &Problem{Kind: HashMismatch, Detail: "the line's content does not match its hash: the line was edited"}
	}
	if canon, err := json.Marshal(b); err != nil || !bytes.Equal(canon, raw) {
		return nil, &Problem{Kind: Malformed, Detail: "the line is not in the form mcp-proxy writes: it was rewritten"}
	}
	if want := prevSeq + 1; b.Seq != want {
		return nil, &Problem{Kind: SeqMismatch, Detail: fmt.Sprintf("seq is %d where %d follows the line before: lines were removed, inserted or reordered", b.Seq, want)}
	}
	if b.Prev != prevHash {
		return nil, &Problem{Kind: PrevMismatch, Detail: "prev is not the hash of the line before: the line does not follow it (lines removed or reordered, or taken from another log)"}
	}
	return &Entry{Seq: b.Seq, Record: b.Record, Prev: b.Prev, Hash: hash}, nil
}
