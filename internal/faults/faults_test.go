package faults

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestInjector(t *testing.T) {
	var in Injector
	srv := httptest.NewServer(in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	get := func(path string) (int, error) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	if err := in.Add(Rule{Path: "/token", Count: 2, Status: 503}); err != nil {
		t.Fatal(err)
	}
	if err := in.Add(Rule{Path: "/drop*", Count: 1, Drop: true}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{503, 503, 200} {
		if got, err := get("/token"); err != nil || got != want {
			t.Errorf("request %d to /token: status %d, err %v; want %d", i, got, err, want)
		}
	}
	if got, _ := get("/other"); got != 200 {
		t.Errorf("/other: %d, want 200 (no rule matches)", got)
	}
	if _, err := get("/drop/x"); err == nil {
		t.Error("a dropped connection answered")
	}
	if got, err := get("/drop/x"); err != nil || got != 200 {
		t.Errorf("after its one use the drop rule still fired: %d %v", got, err)
	}
	if n := len(in.Rules()); n != 0 {
		t.Errorf("%d rules left, want 0: used-up rules are removed", n)
	}
}

func TestRuleValidation(t *testing.T) {
	for _, r := range []Rule{
		{Path: "token", Status: 500},
		{Path: "/t"},
		{Path: "/t", Status: 42},
		{Path: "/t", Status: 500, Drop: true},
		{Path: "/t", Delay: "soon"},
		{Path: "/t", Count: -1, Status: 500},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", r)
		}
	}
}

func TestControlHandler(t *testing.T) {
	var in Injector
	h := in.ControlHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/.test/faults", strings.NewReader(`{"path":"/x","status":500,"typo":1}`)))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "typo") {
		t.Errorf("unknown field: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/.test/faults", strings.NewReader(`{"path":"/x","status":500,"delay":"10ms"}`)))
	if rec.Code != http.StatusCreated || len(in.Rules()) != 1 {
		t.Errorf("add: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/.test/faults", nil))
	if rec.Code != http.StatusNoContent || len(in.Rules()) != 0 {
		t.Errorf("clear: %d, %d rules", rec.Code, len(in.Rules()))
	}
}
