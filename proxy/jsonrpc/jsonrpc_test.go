package jsonrpc

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestParseReadsWhatTheServerActsOn: escapes are read as a server reads
// them, and the members the policy needs come out.
func TestParseReadsWhatTheServerActsOn(t *testing.T) {
	for _, tc := range []struct {
		body           string
		method, name   string
		uri, ref, id   string
		notification   bool
		refType, refNm string
	}{
		{body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"name":"x"}}}`, method: "tools/call", name: "echo", id: "7"},
		{body: `{"jsonrpc":"2.0","id":"a","method":"tools\u002fcall","params":{"name":"delete\u005frepo"}}`, method: "tools/call", name: "delete_repo", id: `"a"`},
		{body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, method: "notifications/initialized", notification: true},
		{body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}}`, method: "resources/read", uri: "file:///a", id: "1"},
		{body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"b"}}}`, method: "completion/complete", id: "1", refType: "ref/prompt", refNm: "p"},
		{body: `{"jsonrpc":"2.0","id":1,"result":{}}`, id: "1"},
	} {
		m, err := Parse([]byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		if m.Method != tc.method || m.Params.Name != tc.name || m.Params.URI != tc.uri || string(m.ID) != tc.id ||
			(m.ID == nil) != tc.notification || m.Params.Ref.Type != tc.refType || m.Params.Ref.Name != tc.refNm {
			t.Errorf("%s: got %+v (id %s)", tc.body, m, m.ID)
		}
	}
}

// TestParseRefusesWhatReadersCouldDisagreeOn: every body a server could
// read as another message than the proxy does is refused.
func TestParseRefusesWhatReadersCouldDisagreeOn(t *testing.T) {
	for name, body := range map[string]string{
		"batch":                  `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}]`,
		"method twice":           `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}`,
		"method twice, escaped":  `{"jsonrpc":"2.0","id":1,"method":"tools/list","\u006dethod":"tools/call"}`,
		"method in another case": `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"x"}}`,
		"name twice":             `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok","name":"delete_repo"}}`,
		"name in another case":   `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok","NAME":"delete_repo"}}`,
		"params twice":           `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok"},"params":{"name":"x"}}`,
		"duplicate deep inside":  `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok","arguments":{"a":1,"a":2}}}`,
		"invalid UTF-8":          "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"a\xff\"}}",
		"trailing value":         `{"jsonrpc":"2.0","id":1,"method":"tools/list"}{"jsonrpc":"2.0","id":2,"method":"tools/call"}`,
		"not JSON":               `method=tools/call`,
		"empty":                  ``,
		"a string":               `"tools/call"`,
		"name is a number":       `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}`,
		"ref is a string":        `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":"x"}}`,
		"method is an object":    `{"jsonrpc":"2.0","id":1,"method":{"a":"tools/call"}}`,
		"cut short":              `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"`,
	} {
		m, err := Parse([]byte(body))
		var e *Error
		if !errors.As(err, &e) || e.Reason == "" {
			t.Errorf("%s: Parse = %+v, %v; want a refusal", name, m, err)
		}
	}
}

func TestCheckHeaders(t *testing.T) {
	call, _ := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`))
	list, _ := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	task, _ := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"t-1"}}`))
	ext, _ := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"example/lookup","params":{"key":"k"}}`))
	note, _ := Parse([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	for _, tc := range []struct {
		m      *Message
		h      http.Header
		reason string // "" means accepted
	}{
		{call, http.Header{}, ""},
		{call, http.Header{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"echo"}}, ""},
		{call, http.Header{"Mcp-Method": {"tools/call"}, "Mcp-Name": {"=?base64?ZWNobw==?="}}, ""},
		{call, http.Header{"Mcp-Method": {"tools/list"}}, `The Mcp-Method header says "tools/list" but the request body's method is "tools/call"; the headers must mirror the body.`},
		{call, http.Header{"Mcp-Name": {"whoami"}}, `The Mcp-Name header says "whoami" but the request body names "echo"; the headers must mirror the body.`},
		{call, http.Header{"Mcp-Method": {"tools/call", "tools/list"}}, "The Mcp-Method header appears more than once; send it once, mirroring the body's method."},
		{list, http.Header{"Mcp-Name": {"echo"}}, `The Mcp-Name header says "echo" but the request's method "tools/list" names nothing; send Mcp-Name only with tools/call, prompts/get, resources/read and the tasks methods.`},
		{note, http.Header{"Mcp-Name": {"x"}}, `The Mcp-Name header says "x" but the request's method "notifications/initialized" names nothing; send Mcp-Name only with tools/call, prompts/get, resources/read and the tasks methods.`},
		// The tasks extension's Mcp-Name is the task id (SEP-2663).
		{task, http.Header{"Mcp-Method": {"tasks/get"}, "Mcp-Name": {"t-1"}}, ""},
		{task, http.Header{"Mcp-Name": {"t-2"}}, `The Mcp-Name header says "t-2" but the request body names "t-1"; the headers must mirror the body.`},
		// A method the proxy does not know: the server checks its headers.
		{ext, http.Header{"Mcp-Method": {"example/lookup"}, "Mcp-Name": {"k"}}, ""},
		{ext, http.Header{"Mcp-Method": {"tools/call"}}, `The Mcp-Method header says "tools/call" but the request body's method is "example/lookup"; the headers must mirror the body.`},
	} {
		err := CheckHeaders(tc.h, tc.m)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.reason {
			t.Errorf("%v on %s: %q, want %q", tc.h, tc.m.Method, got, tc.reason)
		}
	}
}

func keepAllBut(refused ...string) Keep {
	return func(l List, name string) bool {
		for _, r := range refused {
			if name == r {
				return false
			}
		}
		return true
	}
}

// TestFilterAnswer: refused items go, everything else stays, cacheScope
// public becomes private once something went, and results that are no list
// pass untouched.
func TestFilterAnswer(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","x":1},{"name":"whoami"}],"nextCursor":"c2","cacheScope":"public","ttlMs":5}}`,
			`{"id":1,"jsonrpc":"2.0","result":{"cacheScope":"private","nextCursor":"c2","tools":[{"name":"whoami"}],"ttlMs":5}}`},
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"whoami"}]}}`, `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"whoami"}]}}`},
		{`{"jsonrpc":"2.0","id":2,"result":{"resources":[{"uri":"echo"},{"uri":"b"}]}}`, `{"id":2,"jsonrpc":"2.0","result":{"resources":[{"uri":"b"}]}}`},
		{`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"echo"}]}}`, `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"echo"}]}}`},
		{`{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"m"}}`, `{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"m"}}`},
		{`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`, `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`},
		{`[{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"echo"}]}}]`, `[{"id":1,"jsonrpc":"2.0","result":{"prompts":[]}}]`},
	} {
		got, err := FilterAnswer([]byte(tc.in), keepAllBut("echo"))
		if err != nil || string(got) != tc.want {
			t.Errorf("FilterAnswer(%s)\n got %s, %v\nwant %s", tc.in, got, err, tc.want)
		}
	}
	if _, err := FilterAnswer([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"title":"no name"}]}}`), keepAllBut("echo")); err == nil {
		t.Error("a tool without a name passed: the proxy cannot tell whether to keep it")
	}
}

// TestFilterEvents: the list answer in a stream is filtered; other events
// pass as they came, in order, whatever their line ends.
func TestFilterEvents(t *testing.T) {
	in := ": keep-alive\n\n" +
		"event: message\r\nid: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\r\n\r\n" +
		"id: 8\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\n" +
		"data: \"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"whoami\"}]}}\n\n" +
		"retry: 1000\n\n"
	want := ": keep-alive\n\n" +
		"event: message\r\nid: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\r\n\r\n" +
		"id: 8\ndata: {\"id\":1,\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[{\"name\":\"whoami\"}]}}\n\n" +
		"retry: 1000\n\n"
	got, err := io.ReadAll(FilterEvents(io.NopCloser(strings.NewReader(in)), keepAllBut("echo")))
	if err != nil || string(got) != want {
		t.Errorf("got %q, %v\nwant %q", got, err, want)
	}
	// An answer the filter cannot read does not pass as it came.
	bad := "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"nameless\":1}]}}\n\n"
	got, _ = io.ReadAll(FilterEvents(io.NopCloser(strings.NewReader(bad)), keepAllBut("echo")))
	if strings.Contains(string(got), "nameless") || !strings.Contains(string(got), "could not filter") {
		t.Errorf("an unreadable answer: %q", got)
	}
}
