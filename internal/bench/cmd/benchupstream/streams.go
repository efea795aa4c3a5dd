package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// streamServer is -mode streams: the smallest Streamable HTTP server that
// holds MCP sessions' GET event streams, for the streams benchmark
// (docs/performance.md). An initialize POST opens a session (its id in
// Mcp-Session-Id); a GET with that id holds the session's event stream
// open, idle, until the client leaves; POST /bench/notify?rate=R sends one
// event to every open stream, R a second, each stamped with the time it
// was written (Unix nanoseconds), so that the client can tell its delivery
// latency.
type streamServer struct {
	mu      sync.Mutex
	streams map[*stream]struct{}
}

type stream struct{ send chan struct{} }

func newStreamServer() *streamServer { return &streamServer{streams: map[*stream]struct{}{}} }

func (s *streamServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/bench/notify" && r.Method == http.MethodPost:
		s.notify(w, r)
	case r.Method == http.MethodGet:
		s.hold(w, r)
	case r.Method == http.MethodPost:
		id := r.Header.Get("Mcp-Session-Id")
		if id == "" {
			id = rand.Text() // a new session
		}
		w.Header().Set("Mcp-Session-Id", id)
		canned(w, r)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// hold is one session's GET stream: headers at once, then an event
// whenever notify asks for one, until the client goes.
func (s *streamServer) hold(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Mcp-Session-Id") == "" {
		http.Error(w, "no Mcp-Session-Id", http.StatusBadRequest)
		return
	}
	st := &stream{send: make(chan struct{}, 1)}
	s.mu.Lock()
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, st)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// The priming event MCP servers send first (an id to resume from,
	// no data), as the Go SDK's server does.
	io.WriteString(w, "id: 0\ndata:\n\n")
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	buf := make([]byte, 0, 160)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-st.send:
		}
		buf = append(buf[:0], `data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"`...)
		buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
		buf = append(buf, "\"}}\n\n"...)
		if _, err := w.Write(buf); err != nil || rc.Flush() != nil {
			return
		}
	}
}

// notify sends one event to every open stream, rate a second (evenly
// spaced), and answers how many it sent.
func (s *streamServer) notify(w http.ResponseWriter, r *http.Request) {
	rate, err := strconv.Atoi(r.URL.Query().Get("rate"))
	if err != nil || rate < 1 {
		http.Error(w, "rate: want a positive integer", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	all := make([]*stream, 0, len(s.streams))
	for st := range s.streams {
		all = append(all, st)
	}
	s.mu.Unlock()
	start := time.Now()
	for i, st := range all {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		select {
		case st.send <- struct{}{}:
		default:
		}
	}
	fmt.Fprintf(w, "%d\n", len(all))
}
