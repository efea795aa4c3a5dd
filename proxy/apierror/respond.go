package apierror

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
)

// HandlerFunc is a handler that returns its failure instead of writing
// it; a [Responder] turns the error into the response.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Responder is the one place a failed request is answered: it logs the
// failure once (event request_failed, with the request id), counts it
// once, and writes either the JSON body or, for the endpoints a browser
// visits, an HTML page.
type Responder struct {
	// Log receives the request_failed line.
	Log *slog.Logger
	// Count is called once per failed request with its code; nil: not
	// counted.
	Count func(Code)
	// Page renders an error for a browser. Nil: browsers get JSON too.
	Page func(w http.ResponseWriter, e *Error, requestID string)
}

// JSON serves h, answering its errors with the JSON body.
func (rs *Responder) JSON(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			rs.Write(w, r, err)
		}
	})
}

// Pages serves h, answering its errors with an HTML page.
func (rs *Responder) Pages(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			rs.WritePage(w, r, err)
		}
	})
}

// Write answers err with the JSON body.
func (rs *Responder) Write(w http.ResponseWriter, r *http.Request, err error) {
	e := logged(r, rs.Log, err)
	rs.count(e)
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	WriteBody(w, e.Status, Body{Error: e.Code, Description: e.Message, RequestID: RequestID(r.Context())})
}

// WritePage answers err with the error page (JSON when no page renderer
// is set).
func (rs *Responder) WritePage(w http.ResponseWriter, r *http.Request, err error) {
	if rs.Page == nil {
		rs.Write(w, r, err)
		return
	}
	e := logged(r, rs.Log, err)
	rs.count(e)
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	rs.Page(w, e, RequestID(r.Context()))
}

func (rs *Responder) count(e *Error) {
	if rs.Count != nil {
		rs.Count(e.Code)
	}
}

// MethodNotAllowed is the error of a request whose method the endpoint does
// not take; allow lists those it does.
func MethodNotAllowed(r *http.Request, allow ...string) *Error {
	return New(CodeMethodNotAllowed, "%s is not a method of %s; use %s.", r.Method, r.URL.Path, strings.Join(allow, " or ")).
		WithHeader("Allow", strings.Join(allow, ", "))
}

// RPCBody is a JSON-RPC error answer: the request's id, the JSON-RPC code,
// and in data the catalog's code and the request id.
type RPCBody struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   RPCError        `json:"error"`
}

// RPCError is the error member of an [RPCBody].
type RPCError struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Data    map[string]string `json:"data"`
}

// WriteRPC answers err to the JSON-RPC request whose id is id with a
// JSON-RPC error of code, at err's HTTP status: for refusals an MCP client
// must read as it reads the server's own. It logs and counts err as Write
// does.
func (rs *Responder) WriteRPC(w http.ResponseWriter, r *http.Request, id json.RawMessage, code int, err error) {
	e := logged(r, rs.Log, err)
	rs.count(e)
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	rid := RequestID(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(RPCBody{JSONRPC: "2.0", ID: id,
		Error: RPCError{Code: code, Message: e.Message, Data: map[string]string{"error": string(e.Code), "request_id": rid}}})
}
