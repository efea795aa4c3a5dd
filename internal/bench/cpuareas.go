package bench

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// A CPUArea is one row of the table cmd/cpuareas prints: where in a Go
// hop a CPU sample was spent, by the goroutine it ran on and, within the
// handler, by the deepest step it was in.
type CPUArea struct {
	Name string
	// goroutine matches a frame of the goroutines of this area; within
	// the handler, step the deepest frame of its step.
	goroutine, step *regexp.Regexp
}

var (
	handlerRoot = regexp.MustCompile(`^net/http\.serverHandler\.ServeHTTP$|^net/http\.\(\*http2serverConn\)\.runHandler$`)
	// The other steps of the handler are ReverseProxy's and net/http's
	// around it.
	otherStep = "handler: ReverseProxy, the answer written to the client"
)

// CPUAreas are the areas in the order a sample is tried against them; a
// sample that none matches is "other".
var CPUAreas = []CPUArea{
	// Checked first: growing a stack is paid by whichever step crosses the
	// goroutine's stack size, and goroutines started per request (HTTP/2's
	// handlers and upstream streams) pay it on every request.
	{Name: "stack growth (runtime.newstack)", goroutine: regexp.MustCompile(`^runtime\.newstack$`)},
	{Name: "GC: background workers (mark, sweep, scavenge)", goroutine: regexp.MustCompile(`^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)$`)},
	{Name: "handler: reading the request body", goroutine: handlerRoot,
		step: regexp.MustCompile(`readSmallBody|^net/http\.\(\*body\)\.Read$|^net/http\.\(\*http2requestBody\)\.Read$|^io\.ReadAll$`)},
	{Name: "upstream leg: the round trip and its connection's goroutines", goroutine: handlerRoot,
		step: regexp.MustCompile(`^net/http\.\(\*Transport\)\.(roundTrip|RoundTrip)$|^net/http\.\(\*http2(ClientConn|Transport)\)\.RoundTrip$`)},
	{Name: otherStep, goroutine: handlerRoot,
		step: regexp.MustCompile(`^net/http/httputil\.\(\*ReverseProxy\)\.|^net/http\.\(\*response\)\.|^net/http\.\(\*http2responseWriter\)\.|^net/http\.\(\*chunkWriter\)\.`)},
	{Name: "handler: the hop's own code (mcp-proxy: its middleware)", goroutine: handlerRoot,
		step: regexp.MustCompile(`^github\.com/mcp-proxy/mcp-proxy/proxy|^main\.`)},
	{Name: "upstream leg: the round trip and its connection's goroutines",
		goroutine: regexp.MustCompile(`^net/http\.\(\*persistConn\)\.(readLoop|writeLoop)$|^net/http\.\(\*http2(ClientConn|clientConnReadLoop|clientStream)\)\.`)},
	{Name: "client leg: the connection (TLS, reading requests, writing answers and HTTP/2 frames)",
		goroutine: regexp.MustCompile(`^net/http\.\(\*http2serverConn\)\.(serve|readFrames|writeFrameAsync)$|^net/http\.\(\*connReader\)\.backgroundRead$|^net/http\.\(\*conn\)\.serve$`)},
	{Name: "scheduler", goroutine: regexp.MustCompile(`^runtime\.(mcall|schedule|findRunnable|park_m|goexit0|sysmon|mstart)$`)},
}

// classify names the area of a sample whose frames are stack, the leaf
// first: stack growth and the collector's workers first, then the
// handler's steps, then the other goroutines.
func classify(stack []string) string {
	for i, a := range CPUAreas {
		if i == 2 && anyMatch(handlerRoot, stack) {
			return handlerStep(stack)
		}
		if a.step == nil && anyMatch(a.goroutine, stack) {
			return a.Name
		}
	}
	return "other"
}

func anyMatch(re *regexp.Regexp, stack []string) bool {
	for _, f := range stack {
		if re.MatchString(f) {
			return true
		}
	}
	return false
}

// handlerStep is the area of the deepest step of the handler a sample is
// in.
func handlerStep(stack []string) string {
	for _, f := range stack {
		for _, a := range CPUAreas {
			if a.step != nil && a.step.MatchString(f) {
				return a.Name
			}
		}
	}
	return otherStep
}

// ParseTraces reads the output of `go tool pprof -traces` of a CPU
// profile: the CPU time of each area and the profile's duration.
func ParseTraces(r io.Reader) (map[string]time.Duration, time.Duration, error) {
	out := map[string]time.Duration{}
	var dur, v time.Duration
	var stack []string
	flush := func() {
		if v > 0 {
			out[classify(stack)] += v
		}
		v, stack = 0, nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Duration: "):
			d, _, _ := strings.Cut(strings.TrimPrefix(line, "Duration: "), ",")
			var err error
			if dur, err = time.ParseDuration(d); err != nil {
				return nil, 0, fmt.Errorf("pprof -traces: %q: %w", line, err)
			}
		case strings.HasPrefix(line, "-----------+"):
			flush()
		case strings.HasPrefix(line, " "):
			frame := strings.TrimSpace(line)
			if len(stack) == 0 && v == 0 { // the first line: the value, then the leaf
				value, rest, _ := strings.Cut(frame, " ")
				d, err := time.ParseDuration(value)
				if err != nil {
					return nil, 0, fmt.Errorf("pprof -traces: a sample's value %q: %w", value, err)
				}
				v, frame = d, strings.TrimSpace(rest)
			}
			if frame != "" {
				stack = append(stack, strings.TrimSuffix(frame, " (inline)"))
			}
		}
	}
	flush()
	if dur == 0 {
		return nil, 0, fmt.Errorf("pprof -traces: no Duration line")
	}
	return out, dur, sc.Err()
}
