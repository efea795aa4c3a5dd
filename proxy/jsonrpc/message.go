// Package jsonrpc reads the JSON-RPC messages MCP clients send with
// certainty, and rewrites the list answers the access policy filters. The
// proxy decides on what the remote server will act on, so a body that two
// parsers could read differently (a member twice, even in another case; a
// batch; invalid UTF-8; trailing data) is not a message here: it is an
// *Error, and the caller refuses it rather than forward it undecided.
//
// It reads with jsontext (github.com/go-json-experiment/json), which
// rejects duplicate names and invalid UTF-8 itself; the case-folded
// duplicate check is this package's, since encoding/json, which many
// servers decode with, matches member names without regard to case.
package jsonrpc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"

	"github.com/go-json-experiment/json/jsontext"
)

// Message is what the policy needs of one JSON-RPC message a client sent.
type Message struct {
	// Method is the method of a request or notification; "" for a response
	// (a client's answer to a server's request).
	Method string
	// ID is the request id as sent (a JSON string or number); nil for a
	// notification.
	ID jsontext.Value
	// Params are the members of params the policy reads.
	Params Params
}

// Params are the members of a message's params that name what it acts on.
type Params struct {
	// Name is params.name (tools/call, prompts/get).
	Name string
	// URI is params.uri (resources/read, resources/subscribe, …).
	URI string
	// Ref is params.ref (completion/complete).
	Ref Ref
	// TaskID is params.taskId (the tasks extension's tasks/get,
	// tasks/update and tasks/cancel).
	TaskID string
}

// Ref is a completion's reference: a prompt by name or a resource by URI.
type Ref struct {
	Type string // "ref/prompt" or "ref/resource"
	Name string
	URI  string
}

// Error says why a body is not one message the proxy can read with
// certainty.
type Error struct {
	Reason string
}

func (e *Error) Error() string { return e.Reason }

func notInspectable(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// reader is a decoder and the reader it reads, reused: a jsontext.Decoder
// holds buffers worth keeping.
type reader struct {
	r bytes.Reader
	d *jsontext.Decoder
}

var readers = sync.Pool{New: func() any {
	rd := &reader{}
	rd.d = jsontext.NewDecoder(&rd.r)
	return rd
}}

// Parse reads body as one JSON-RPC message.
func Parse(body []byte) (*Message, error) {
	rd := readers.Get().(*reader)
	rd.r.Reset(body)
	rd.d.Reset(&rd.r)
	defer func() {
		rd.r.Reset(nil)
		readers.Put(rd)
	}()
	d := rd.d
	switch d.PeekKind() {
	case '{':
	case '[':
		return nil, notInspectable("the body is a JSON-RPC batch; send one message per request")
	case 0:
		return nil, notInspectable("the body is not JSON")
	default:
		return nil, notInspectable("the body is not a JSON object")
	}
	m := &Message{}
	err := readObject(d, "the message", func(name string) error {
		switch name {
		case "method":
			return readString(d, "method", &m.Method)
		case "id":
			v, err := d.ReadValue()
			if err != nil {
				return err
			}
			m.ID = v.Clone()
			return nil
		case "params":
			if d.PeekKind() != '{' {
				return d.SkipValue()
			}
			return readParams(d, &m.Params)
		}
		return d.SkipValue()
	})
	if err != nil {
		return nil, asError(err)
	}
	if _, err := d.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, notInspectable("the body holds more than one JSON value")
	}
	return m, nil
}

func readParams(d *jsontext.Decoder, p *Params) error {
	return readObject(d, "params", func(name string) error {
		switch name {
		case "name":
			return readString(d, "params.name", &p.Name)
		case "uri":
			return readString(d, "params.uri", &p.URI)
		case "taskid":
			return readString(d, "params.taskId", &p.TaskID)
		case "ref":
			if d.PeekKind() != '{' {
				return notInspectable("params.ref is not an object")
			}
			return readObject(d, "params.ref", func(name string) error {
				switch name {
				case "type":
					return readString(d, "params.ref.type", &p.Ref.Type)
				case "name":
					return readString(d, "params.ref.name", &p.Ref.Name)
				case "uri":
					return readString(d, "params.ref.uri", &p.Ref.URI)
				}
				return d.SkipValue()
			})
		}
		return d.SkipValue()
	})
}

// readObject reads one object, calling member for each name, case-folded,
// with the decoder at its value. Names are matched without regard to case,
// as encoding/json matches them: "Method" is the method to a server that
// decodes with it. Two names equal but for case are refused: such readers
// would take either.
func readObject(d *jsontext.Decoder, what string, member func(name string) error) error {
	if _, err := d.ReadToken(); err != nil { // '{'
		return err
	}
	seen := map[string]string{}
	for d.PeekKind() != '}' {
		tok, err := d.ReadToken()
		if err != nil {
			return err
		}
		name := tok.String()
		folded := fold(name)
		if prev, dup := seen[folded]; dup {
			return notInspectable("%s has the members %q and %q, which readers that ignore case take for one", what, prev, name)
		}
		seen[folded] = name
		if err := member(folded); err != nil {
			return err
		}
	}
	_, err := d.ReadToken() // '}'
	return err
}

// fold maps s to a key that is equal for two strings exactly when
// strings.EqualFold (and so encoding/json) takes them for one: each rune
// becomes the lower case of the smallest rune of its simple case-folding
// orbit, so that "Method" is "method", "ſ" is "s" and the Kelvin sign is
// "k".
func fold(s string) string {
	if isPlainLower(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(unicode.ToLower(least))
	}
	return b.String()
}

// isPlainLower reports whether s is ASCII without upper-case letters, which
// fold leaves as it is (a lower-case letter's orbit, k's and s's with their
// non-ASCII partners included, folds back to it): the names of every member
// the proxy reads, as clients send them.
func isPlainLower(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

func readString(d *jsontext.Decoder, what string, dst *string) error {
	if d.PeekKind() != '"' {
		return notInspectable("%s is not a string", what)
	}
	tok, err := d.ReadToken()
	if err != nil {
		return err
	}
	*dst = tok.String()
	return nil
}

// asError turns a syntax error of jsontext (a duplicate name, invalid
// UTF-8, broken JSON) into an *Error that says so.
func asError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return notInspectable("the body is not JSON the proxy can read with certainty: %v", se.Err)
	}
	return notInspectable("the body is not JSON: %v", err)
}
