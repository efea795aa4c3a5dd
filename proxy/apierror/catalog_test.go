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
