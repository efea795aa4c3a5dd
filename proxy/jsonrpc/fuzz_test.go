package jsonrpc

import (
	"encoding/json"
	"testing"
)

// FuzzParse: whatever body Parse accepts, encoding/json (which matches
// member names without regard to case, and keeps the last of duplicates)
// reads the same method, name and URI: no body means one thing to the
// proxy and another to a server.
func FuzzParse(f *testing.F) {
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`)
	f.Add(`{"method":"tools\u002fcall","params":{"name":"a","NAME":"b"}}`)
	f.Add(`{"method":"resources/read","params":{"uri":"file:///x"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := Parse([]byte(body))
		if err != nil {
			return
		}
		var std struct {
			Method string
			Params *struct {
				Name string
				URI  string
			}
		}
		if json.Unmarshal([]byte(body), &std) != nil {
			return // the server refuses it too
		}
		name, uri := "", ""
		if std.Params != nil {
			name, uri = std.Params.Name, std.Params.URI
		}
		if std.Method != m.Method || name != m.Params.Name || uri != m.Params.URI {
			t.Fatalf("%q: the proxy reads %q %q %q, encoding/json reads %q %q %q", body, m.Method, m.Params.Name, m.Params.URI, std.Method, name, uri)
		}
	})
}
