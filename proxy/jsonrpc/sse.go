package jsonrpc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxEvent bounds one server-sent event the filter holds: a list answer of
// a few thousand tools fits; a larger event ends the stream with an error
// rather than pass unfiltered.
const MaxEvent = 16 << 20

// FilterEvents returns a reader of the server-sent event stream r with
// every event's data filtered by FilterAnswer. Events pass one at a time, as
// they arrive: an event is held only until its blank line, and comments,
// ids, event names and retry fields pass as they were. The parsing follows
// the HTML event stream format: lines end with LF, CRLF or CR; data lines
// join with LF.
//
// It is hand-written because neither the standard library nor the MCP Go
// SDK exports an event stream reader that keeps the fields it does not
// interpret.
func FilterEvents(r io.ReadCloser, keep Keep) io.ReadCloser {
	in := bufio.NewScanner(r)
	in.Buffer(make([]byte, 0, 4<<10), MaxEvent)
	in.Split(lines)
	return &eventFilter{src: r, in: in, keep: keep}
}

// lines splits an event stream into lines, each with its end (LF, CRLF or
// CR); a CR at the end of what has arrived waits for the next byte.
func lines(data []byte, atEOF bool) (int, []byte, error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0 && atEOF && len(data) > 0:
		return len(data), data, nil
	case i < 0:
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i+1], nil
	case i+1 < len(data) && data[i+1] == '\n':
		return i + 2, data[:i+2], nil
	case i+1 < len(data) || atEOF:
		return i + 1, data[:i+1], nil
	}
	return 0, nil, nil // a CR, and the byte after it has not arrived
}

type eventFilter struct {
	src  io.ReadCloser
	in   *bufio.Scanner
	keep Keep
	out  bytes.Buffer // what is ready to be read
	ev   bytes.Buffer // the event being read, as it came
	err  error
}

func (f *eventFilter) Close() error { return f.src.Close() }

func (f *eventFilter) Read(p []byte) (int, error) {
	for f.out.Len() == 0 && f.err == nil {
		f.err = f.next()
	}
	if f.out.Len() > 0 {
		return f.out.Read(p)
	}
	return 0, f.err
}

// next reads one line; at an event's end it moves the event, filtered, to
// out.
func (f *eventFilter) next() error {
	line, err := f.readLine()
	if len(line) > 0 {
		f.ev.Write(line)
		if f.ev.Len() > MaxEvent {
			return errEventTooLarge
		}
	}
	if isBlank(line) && f.ev.Len() > 0 || err != nil && f.ev.Len() > 0 {
		f.flushEvent()
	}
	return err
}

var errEventTooLarge = &Error{Reason: "an event of the remote server's stream is larger than the proxy filters"}

// readLine reads up to and including a line end; io.EOF after the last.
func (f *eventFilter) readLine() ([]byte, error) {
	if f.in.Scan() {
		return f.in.Bytes(), nil
	}
	if err := f.in.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, errEventTooLarge
		}
		return nil, err
	}
	return nil, io.EOF
}

func isBlank(line []byte) bool {
	return len(line) > 0 && len(bytes.TrimRight(line, "\r\n")) == 0
}

// flushEvent filters the held event's data and queues it.
func (f *eventFilter) flushEvent() {
	defer f.ev.Reset()
	raw := f.ev.Bytes()
	var data [][]byte
	var other [][]byte
	for _, l := range splitLines(raw) {
		field, value, _ := bytes.Cut(bytes.TrimRight(l, "\r\n"), []byte(":"))
		if string(field) == "data" {
			data = append(data, bytes.TrimPrefix(value, []byte(" ")))
			continue
		}
		other = append(other, l)
	}
	if len(data) == 0 {
		f.out.Write(raw)
		return
	}
	payload := bytes.Join(data, []byte("\n"))
	filtered, err := FilterAnswer(payload, f.keep)
	if err != nil || bytes.Equal(filtered, payload) {
		if err != nil && looksLikeAnswer(payload) {
			// An answer the proxy cannot read is not passed undecided.
			f.out.WriteString("event: message\ndata: {\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,\"message\":\"the proxy could not filter the remote server's answer\"}}\n\n")
			return
		}
		f.out.Write(raw)
		return
	}
	for _, l := range other {
		if !isBlank(l) {
			f.out.Write(l)
		}
	}
	f.out.WriteString("data: ")
	f.out.Write(filtered)
	f.out.WriteString("\n\n")
}

// looksLikeAnswer reports whether payload could be a JSON-RPC answer: it
// starts like JSON. Anything else (a keep-alive, text of another protocol)
// passes as it came.
func looksLikeAnswer(payload []byte) bool {
	t := bytes.TrimSpace(payload)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

func splitLines(b []byte) [][]byte {
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			lines = append(lines, b)
			break
		}
		j := i + 1
		if b[i] == '\r' && j < len(b) && b[j] == '\n' {
			j++
		}
		lines = append(lines, b[:j])
		b = b[j:]
	}
	return lines
}
