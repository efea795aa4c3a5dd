package mockas

import (
	"encoding/json"
	"errors"
)

// jsonObject is a JSON object whose fields are read one at a time, so that
// a field of the wrong type can be named: client metadata (RFC 7591 §2)
// and client metadata documents share it.
type jsonObject map[string]json.RawMessage

// decodeObject decodes body, which must be a JSON object (not null).
func decodeObject(body []byte) (jsonObject, error) {
	var doc jsonObject
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errors.New("it is null")
	}
	return doc, nil
}

// str is the string field name: its value, whether it is present, and
// whether it is a string (an absent field is).
func (o jsonObject) str(name string) (v string, present, ok bool) {
	raw, present := o[name]
	if !present {
		return "", false, true
	}
	return v, true, json.Unmarshal(raw, &v) == nil
}

// strs is the array of strings field name, like str; a JSON null is a
// nil array.
func (o jsonObject) strs(name string) (v []string, present, ok bool) {
	raw, present := o[name]
	if !present {
		return nil, false, true
	}
	return v, true, json.Unmarshal(raw, &v) == nil
}
