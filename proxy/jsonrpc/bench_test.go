package jsonrpc

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// listOf500 is a tools/list answer of 500 tools with schemas, as large
// MCP servers (GitHub's, a cloud provider's) answer.
func listOf500() string {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":1,"result":{"tools":[`)
	for i := range 500 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"tool_%03d","description":"Does thing %d to a repository, with care.","inputSchema":{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"n":{"type":"integer"}},"required":["owner","repo"]}}`, i, i)
	}
	b.WriteString(`],"nextCursor":"p2"}}`)
	return b.String()
}

// refuseOdd keeps every other tool.
func refuseOdd(_ List, name string) bool { return name[len(name)-1]%2 == 0 }

// BenchmarkFilterAnswer500: filtering a JSON tools/list answer of 500
// tools (about 110 KB), half of them refused.
func BenchmarkFilterAnswer500(b *testing.B) {
	answer := []byte(listOf500())
	b.SetBytes(int64(len(answer)))
	for b.Loop() {
		if _, err := FilterAnswer(answer, refuseOdd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilterEvents500: the same answer as a server-sent event.
func BenchmarkFilterEvents500(b *testing.B) {
	event := "event: message\ndata: " + listOf500() + "\n\n"
	b.SetBytes(int64(len(event)))
	for b.Loop() {
		if _, err := io.Copy(io.Discard, FilterEvents(io.NopCloser(strings.NewReader(event)), refuseOdd)); err != nil {
			b.Fatal(err)
		}
	}
}
