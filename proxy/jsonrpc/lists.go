package jsonrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// List is a list whose items a policy can refuse: the method that lists
// them, the member of its result that holds them, and the member of an item
// that names it.
type List struct {
	Method string
	Items  string
	Key    string
}

// Lists are MCP's lists of tools, prompts, resources and resource
// templates.
var Lists = []List{
	{"tools/list", "tools", "name"},
	{"prompts/list", "prompts", "name"},
	{"resources/list", "resources", "uri"},
	{"resources/templates/list", "resourceTemplates", "uriTemplate"},
}

// Keep decides whether the user may see the item named name of list l.
type Keep func(l List, name string) bool

// FilterAnswer rewrites answer, a JSON-RPC message (or a batch of them) the
// remote server sent, removing the items of every list in a result that
// keep refuses. It goes by the result's shape, not by the request it
// answers: an answer replayed on another stream (Last-Event-ID) is
// filtered like the original. When an item was removed and the result says
// cacheScope "public", it says "private" instead: the answer is now this
// user's. A message with nothing removed is returned as it was; members the
// proxy does not know pass through.
func FilterAnswer(answer []byte, keep Keep) ([]byte, error) {
	trimmed := bytes.TrimSpace(answer)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(trimmed, &batch); err != nil {
			return nil, fmt.Errorf("the remote server's answer is not JSON: %w", err)
		}
		changed := false
		for i, m := range batch {
			out, err := FilterAnswer(m, keep)
			if err != nil {
				return nil, err
			}
			changed = changed || !bytes.Equal(out, m)
			batch[i] = out
		}
		if !changed {
			return answer, nil
		}
		return json.Marshal(batch)
	}
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &msg); err != nil {
		return nil, fmt.Errorf("the remote server's answer is not a JSON object: %w", err)
	}
	if msg["result"] == nil || bytes.Equal(bytes.TrimSpace(msg["result"]), []byte("null")) {
		return answer, nil
	}
	var result map[string]json.RawMessage
	if err := json.Unmarshal(msg["result"], &result); err != nil {
		return answer, nil // not a list's result
	}
	changed := false
	for _, l := range Lists {
		c, err := filterList(result, l, keep)
		if err != nil {
			return nil, err
		}
		changed = changed || c
	}
	if !changed {
		return answer, nil
	}
	if bytes.Equal(bytes.TrimSpace(result["cacheScope"]), []byte(`"public"`)) {
		result["cacheScope"] = json.RawMessage(`"private"`)
	}
	var err error
	if msg["result"], err = json.Marshal(result); err != nil {
		return nil, err
	}
	return json.Marshal(msg)
}

// filterList removes the refused items of l from result; it reports
// whether it removed any.
func filterList(result map[string]json.RawMessage, l List, keep Keep) (bool, error) {
	raw, ok := result[l.Items]
	if !ok {
		return false, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return false, fmt.Errorf("the remote server's result has %s that is not a list", l.Items)
	}
	kept := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		name, ok := itemName(it, l.Key)
		if !ok {
			return false, fmt.Errorf("an item of the remote server's %s has no string %s", l.Items, l.Key)
		}
		if keep(l, name) {
			kept = append(kept, it)
		}
	}
	if len(kept) == len(items) {
		return false, nil
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return false, err
	}
	result[l.Items] = b
	return true, nil
}

// itemKeys holds the members that name a list's items; decoding into it
// reads no other member into memory.
type itemKeys struct {
	Name        *string `json:"name"`
	URI         *string `json:"uri"`
	URITemplate *string `json:"uriTemplate"`
}

// itemName reads the member key (name, uri or uriTemplate) of an item.
func itemName(item []byte, key string) (string, bool) {
	var k itemKeys
	if json.Unmarshal(item, &k) != nil {
		return "", false
	}
	var v *string
	switch key {
	case "name":
		v = k.Name
	case "uri":
		v = k.URI
	case "uriTemplate":
		v = k.URITemplate
	}
	if v == nil {
		return "", false
	}
	return *v, true
}
