package apierror

import "testing"

func TestCatalogCodesUnique(t *testing.T) {
	seen := map[Code]bool{}
	for _, e := range Catalog() {
		if seen[e.Code] {
			t.Errorf("code %s appears twice", e.Code)
		}
		seen[e.Code] = true
		if e.Status < 400 || e.Meaning == "" {
			t.Errorf("code %s: status %d, meaning %q", e.Code, e.Status, e.Meaning)
		}
	}
}

// TestCatalogOwnsStatus: an error answers with its code's status, or one
// the catalog lists for it; any other status is replaced.
func TestCatalogOwnsStatus(t *testing.T) {
	for _, tc := range []struct {
		code       Code
		status     int
		wantStatus int
	}{
		{CodeInternal, 503, 500},
		{CodeInternal, 500, 500},
		{CodeInvalidRequest, 403, 403},
		{CodeInvalidRequest, 502, 400},
		{CodeLoginFailed, 400, 400},
		{CodeUnauthorized, 400, 401},
		{"no_such_code", 418, 500},
	} {
		if got := StatusOf(tc.code, tc.status); got != tc.wantStatus {
			t.Errorf("StatusOf(%s, %d) = %d, want %d", tc.code, tc.status, got, tc.wantStatus)
		}
	}
}
