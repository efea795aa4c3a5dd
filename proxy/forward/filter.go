package forward

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/mcp-proxy/mcp-proxy/proxy/jsonrpc"
	"github.com/mcp-proxy/mcp-proxy/proxy/request"
)

// MaxFilteredAnswer is the largest JSON answer the proxy reads to filter
// it: a list of thousands of tools fits.
const MaxFilteredAnswer = 16 << 20

var errNotFiltered = errors.New("the answer could not be filtered")

// finish prepares an answer for the MCP client: on a route whose policy
// hides list items (sc.Visible), every JSON-RPC answer is filtered, JSON
// and event streams alike; other answers are collected as usual.
func finish(resp *http.Response, sc *request.Scope) error {
	if sc == nil || sc.Visible == nil || resp.StatusCode >= 300 {
		return collectAnswer(resp)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case mt == "text/event-stream":
		resp.Body = jsonrpc.FilterEvents(resp.Body, sc.Visible)
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
		return nil
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return filterJSON(resp, sc.Visible)
	}
	return collectAnswer(resp)
}

// filterJSON reads a JSON answer in full and filters it.
func filterJSON(resp *http.Response, keep jsonrpc.Keep) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxFilteredAnswer+1))
	resp.Body.Close()
	if err != nil {
		return err
	}
	if len(b) > MaxFilteredAnswer {
		return fmt.Errorf("%w: it is larger than %d bytes", errNotFiltered, MaxFilteredAnswer)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if b, err = jsonrpc.FilterAnswer(b, keep); err != nil {
			return fmt.Errorf("%w: %v", errNotFiltered, err)
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.TransferEncoding = nil
	resp.Header["Content-Length"] = []string{strconv.Itoa(len(b))}
	return nil
}
