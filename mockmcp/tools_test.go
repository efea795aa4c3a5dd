package mockmcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event, data string
}

// readEvent reads the next server-sent event (RFC-less summary of the
// WHATWG format: field lines up to a blank line).
func readEvent(r *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			ev.data = strings.Join(data, "\n")
			return ev, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
		}
	}
}

// gates hold the slow tool at chosen steps until the test opens them.
type gates struct {
	reached chan int
	open    map[int]chan struct{}
	closed  map[int]bool
}

func newGates(t *testing.T, s *Server, steps ...int) *gates {
	g := &gates{reached: make(chan int, 100), open: map[int]chan struct{}{}, closed: map[int]bool{}}
	for _, i := range steps {
		g.open[i] = make(chan struct{})
	}
	hook := func(ctx context.Context, step int) {
		g.reached <- step
		if ch, ok := g.open[step]; ok {
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
	}
	s.stepHook.Store(&hook)
	// Registered after the servers' cleanups, so it runs first: a held tool
	// is let go before the servers wait for their handlers.
	t.Cleanup(func() {
		for i := range g.open {
			g.release(i)
		}
	})
	return g
}

func (g *gates) release(step int) {
	if !g.closed[step] {
		g.closed[step] = true
		close(g.open[step])
	}
}

// await waits until the tool reaches step; the 10 s bound only turns a hang
// into a failure.
func (g *gates) await(t *testing.T, step int) {
	t.Helper()
	select {
	case got := <-g.reached:
		if got != step {
			t.Fatalf("the tool reached step %d, want %d", got, step)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the tool never reached step %d", step)
	}
}

// TestSlowToolStreams proves the stream is real: while the tool is held
// before its first wait, the priming event and the recorded event are
// already visible; while it is held after step 1, the progress
// notification of step 1 has already arrived. A server that buffered the
// stream would deliver nothing until the tool returned, and this test would
// fail on its read deadline.
func TestSlowToolStreams(t *testing.T) {
	e := newEnv(t)
	g := newGates(t, e.srv, 0, 1)
	tok := e.valid()
	sid := e.rawSession("Bearer " + tok)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := `{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2,"interval_ms":1},"_meta":{"progressToken":"p"}}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, resourceURL, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("tools/call slow: %v (unflushed headers?)", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("status %d type %q, want 200 text/event-stream", resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)

	g.await(t, 0)
	ev, err := readEvent(r)
	if err != nil || ev.id == "" || ev.data != "" {
		t.Fatalf("first event %+v (%v), want the priming event (an id, no data)", ev, err)
	}
	var recorded bool
	for _, ev := range e.srv.Recorder().Events() {
		if ev.Detail[DetailToolName] == "slow" && ev.Status == http.StatusOK {
			recorded = true
		}
	}
	if !recorded {
		t.Errorf("the open stream was not recorded yet")
	}
	g.release(0)

	type message struct {
		Method string `json:"method"`
		Params struct {
			ProgressToken string  `json:"progressToken"`
			Progress      float64 `json:"progress"`
			Total         float64 `json:"total"`
			Message       string  `json:"message"`
		} `json:"params"`
		ID     json.RawMessage `json:"id"`
		Result *struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	next := func() message {
		t.Helper()
		for {
			ev, err := readEvent(r)
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			if ev.data == "" {
				continue
			}
			var m message
			if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
				t.Fatalf("event data %q: %v", ev.data, err)
			}
			return m
		}
	}
	wantProgress := func(m message, step int) {
		t.Helper()
		p := m.Params
		if m.Method != "notifications/progress" || p.ProgressToken != "p" || p.Progress != float64(step) || p.Total != 2 ||
			p.Message != fmt.Sprintf("step %d of 2", step) {
			t.Errorf("message %+v, want the progress notification of step %d", m, step)
		}
	}

	g.await(t, 1)
	wantProgress(next(), 1) // the tool is still held after step 1
	g.release(1)
	g.await(t, 2)
	wantProgress(next(), 2)
	m := next()
	if string(m.ID) != "11" || m.Result == nil || len(m.Result.Content) != 1 || m.Result.Content[0].Text != "slow: took 2 steps of 1 ms" {
		t.Errorf("last message %+v, want the result of call 11", m)
	}
}

func TestSlowToolArguments(t *testing.T) {
	e := newEnv(t)
	cs := connect(t, e, e.valid())
	tests := []struct {
		name string
		args map[string]any
		want string // the text of the result or of the tool error
		err  bool
	}{
		{"defaults", nil, "slow: took 3 steps of 100 ms", false},
		{"no wait", map[string]any{"steps": 5, "interval_ms": 0}, "slow: took 5 steps of 0 ms", false},
		{"short wait", map[string]any{"steps": 1, "interval_ms": 2}, "slow: took 1 steps of 2 ms", false},
		{"negative steps", map[string]any{"steps": -1}, "steps must be 1..1000 and interval_ms 0..60000; got steps -1, interval_ms 100", true},
		{"too many steps", map[string]any{"steps": 1001, "interval_ms": 0}, "steps must be 1..1000", true},
		{"too long a wait", map[string]any{"interval_ms": 60001}, "interval_ms 60001", true},
		{"negative wait", map[string]any{"interval_ms": -1}, "interval_ms -1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "slow", Arguments: tt.args})
			if err != nil {
				t.Fatalf("CallTool: %v", err)
			}
			if res.IsError != tt.err || len(res.Content) != 1 {
				t.Fatalf("IsError %v, content %s; want IsError %v", res.IsError, mustJSON(t, res.Content), tt.err)
			}
			if got := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(got, tt.want) {
				t.Errorf("text %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
