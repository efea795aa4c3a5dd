package forward

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamsShareAnHTTP2Connection: GET event streams go to a remote
// server that offers HTTP/2 over it, several on one connection, while
// POSTs keep HTTP/1.1; an event larger than a stream's copy buffer
// arrives whole.
func TestStreamsShareAnHTTP2Connection(t *testing.T) {
	big := strings.Repeat("x", 3*eventBufferSize)
	var mu sync.Mutex
	protos, conns := map[string]int{}, map[string]bool{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Method+" "+r.Proto]++
		conns[r.RemoteAddr] = r.Method == http.MethodGet || conns[r.RemoteAddr]
		mu.Unlock()
		if r.Method != http.MethodGet {
			io.WriteString(w, `{}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: "+big+"\n\n")
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	f := newFixture(t, up)
	front := httptest.NewServer(f.h)
	defer front.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a deadlock guard, not a measurement
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/mcp", nil)
			req.Host = "mcp.example.com"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || line != "data: "+big+"\n" {
				t.Errorf("the event: %d bytes, %v", len(line), err)
			}
		})
	}
	wg.Wait()
	if w := f.post(t, `{}`); w.Code != http.StatusOK {
		t.Fatalf("POST: %d %s", w.Code, w.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if protos["GET HTTP/2.0"] != 3 || protos["POST HTTP/1.1"] != 1 {
		t.Errorf("requests by protocol: %v, want 3 GETs over HTTP/2 and the POST over HTTP/1.1", protos)
	}
	streamConns := 0
	for _, get := range conns {
		if get {
			streamConns++
		}
	}
	if streamConns != 1 {
		t.Errorf("the GETs came over %d connections, want 1", streamConns)
	}
}
