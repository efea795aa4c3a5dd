package redact

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"access_token":"a","nested":{"client_secret":"b"},"list":[{"id_token":"c"}],"ok":"kept"}`,
			`{"access_token":"[redacted]","list":[{"id_token":"[redacted]"}],"nested":{"client_secret":"[redacted]"},"ok":"kept"}`},
		{`{"error_description":"token=abc is revoked"}`, `{"error_description":"token=[redacted] is revoked"}`},
		{`registration_access_token=abc&client_id=x`, `registration_access_token=[redacted]&client_id=x`},
		{`"refresh_token": "abc def"`, `"refresh_token": [redacted]`},
		{`Authorization: Bearer abcdefghijk`, `Authorization: Bearer [redacted]`},
		{`jwt eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. here`, `jwt [redacted] here`},
		{`the client_id is mcp-proxy`, `the client_id is mcp-proxy`},
		{strings.Repeat("x", 600), strings.Repeat("x", MaxText) + "…"},
	}
	for _, tt := range tests {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncateCutsOnACharacter(t *testing.T) {
	if got := Truncate("ééé", 3); got != "é…" {
		t.Errorf("Truncate = %q", got)
	}
	if got := Truncate("abc", 3); got != "abc" {
		t.Errorf("Truncate = %q", got)
	}
}
