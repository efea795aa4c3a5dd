package jsonrpc

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// The headers that mirror a message for intermediaries (the 2026-07-28
// Streamable HTTP transport, SEP-2243).
const (
	MethodHeader = "Mcp-Method"
	NameHeader   = "Mcp-Name"
)

// HeaderError is a mirrored header that disagrees with the body.
type HeaderError struct{ Reason string }

func (e *HeaderError) Error() string { return e.Reason }

// Named returns what the message's Mcp-Name header mirrors: the tool or
// prompt name, or the resource URI, of the methods that carry one, and
// the task id of the tasks extension's methods on a task (SEP-2663).
func (m *Message) Named() (string, bool) {
	switch m.Method {
	case "tools/call", "prompts/get":
		return m.Params.Name, true
	case "resources/read":
		return m.Params.URI, true
	case "tasks/get", "tasks/update", "tasks/cancel":
		return m.Params.TaskID, true
	}
	return "", false
}

// namesNothing are the protocol's methods whose requests name nothing an
// Mcp-Name header could mirror. A method outside it and outside Named's
// (an extension's) is the server's to check.
var namesNothing = map[string]bool{
	"initialize": true, "ping": true, "server/discover": true, "subscriptions/listen": true,
	"tools/list": true, "prompts/list": true, "resources/list": true, "resources/templates/list": true,
	"resources/subscribe": true, "resources/unsubscribe": true, "completion/complete": true,
	"logging/setLevel": true,
}

// mayName reports whether a request of method may carry Mcp-Name as far
// as the proxy can tell: every method but the protocol's that name
// nothing, and its notifications.
func mayName(method string) bool {
	return !namesNothing[method] && !strings.HasPrefix(method, "notifications/")
}

// CheckHeaders checks that the mirrored headers h carries agree with m: the
// transport makes an intermediary refuse a request whose headers and body
// disagree, since one that routed or decided on the header would act on
// something else than the server. A header that is absent is not checked
// (the server requires them of 2026-07-28 clients; older clients send
// none), and so is Mcp-Name on a method the proxy does not know.
func CheckHeaders(h http.Header, m *Message) error {
	if v := h.Values(MethodHeader); len(v) > 0 {
		if len(v) > 1 {
			return &HeaderError{"The Mcp-Method header appears more than once; send it once, mirroring the body's method."}
		}
		if v[0] != m.Method {
			if m.Method == "" {
				return &HeaderError{fmt.Sprintf("The Mcp-Method header says %q but the request body has no method; the headers must mirror the body.", v[0])}
			}
			return &HeaderError{fmt.Sprintf("The Mcp-Method header says %q but the request body's method is %q; the headers must mirror the body.", v[0], m.Method)}
		}
	}
	v := h.Values(NameHeader)
	if len(v) == 0 {
		return nil
	}
	if len(v) > 1 {
		return &HeaderError{"The Mcp-Name header appears more than once; send it once, mirroring the body's name."}
	}
	named, ok := m.Named()
	if !ok && mayName(m.Method) {
		return nil
	}
	if !ok {
		return &HeaderError{fmt.Sprintf("The Mcp-Name header says %q but the request's method %q names nothing; send Mcp-Name only with tools/call, prompts/get, resources/read and the tasks methods.", v[0], m.Method)}
	}
	if got := decodeHeader(v[0]); got != named {
		return &HeaderError{fmt.Sprintf("The Mcp-Name header says %q but the request body names %q; the headers must mirror the body.", got, named)}
	}
	return nil
}

// decodeHeader reads a header value that may be base64 encoded as
// =?base64?…?= (how the transport carries values that are not plain ASCII).
func decodeHeader(v string) string {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v
	}
	inner, ok = strings.CutSuffix(inner, "?=")
	if !ok {
		return v
	}
	b, err := base64.StdEncoding.DecodeString(inner)
	if err != nil {
		return v
	}
	return string(b)
}
