package ui

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

func TestRecordsPath(t *testing.T) {
	tests := []struct {
		escaped, want string
		wantOK        bool
		wantErr       bool
	}{
		{"/api/records", "/records", true, false},
		{"/api/records/0123456789abcdef", "/records/0123456789abcdef", true, false},
		{"/api/records/A-b_9", "/records/A-b_9", true, false},
		{"/api/records/", "", false, false},
		{"/api/records/a/b", "", false, false},
		{"/api/recordsx", "", false, false},
		{"/api/other", "", false, false},
		{"/api/records/..", "", false, true},
		{"/api/records/.", "", false, true},
		{"/api/records/../metrics", "", false, true},
		{"/api/records/..%2fmetrics", "", false, true},
		{"/api/records/%2F..", "", false, true},
		{"/api/records/%2e%2E", "", false, true},
		{"/api/records/a%5cb", "", false, true},
		{`/api/records/a\b`, "", false, true},
		{"/api/records;a", "", false, true},
		{"/api/records/a%3bb", "", false, true},
		{"/api/records/a%zz", "", false, true},
		{"/api/records/a%20b", "", false, true},
		{"/api/records/%61", "", false, true}, // an escaped letter: ids are sent plain
		{"/api/records/" + strings.Repeat("a", 64), "/records/" + strings.Repeat("a", 64), true, false},
		{"/api/records/" + strings.Repeat("a", 65), "", false, true},
	}
	for _, tt := range tests {
		got, ok, err := recordsPath(tt.escaped)
		if got != tt.want || ok != tt.wantOK || (err != nil) != tt.wantErr {
			t.Errorf("recordsPath(%q) = %q, %v, %v; want %q, %v, error %v", tt.escaped, got, ok, err, tt.want, tt.wantOK, tt.wantErr)
		}
		if e, _ := err.(*fail.Error); err != nil && (e == nil || e.Code != fail.EINVALID || e.Field != "path") {
			t.Errorf("recordsPath(%q): got error %+v, want an invalid error naming path", tt.escaped, err)
		}
	}
}

// FuzzRecordsPath: whatever the escaped path, a path the proxy accepts is one the
// function reads exactly as the UI checked it: /records or /records/{id}, with no
// dot segment, escape, backslash or semicolon, equal to its cleaned form, and the
// same after a round through URL parsing; and it is the path the client asked for.
// Run it with: go test ./ui -run '^$' -fuzz FuzzRecordsPath -fuzztime 60s
func FuzzRecordsPath(f *testing.F) {
	for _, seed := range []string{
		"/api/records", "/api/records/abc", "/api/records/..%2fmetrics", "/api/records/a%2F..%2F..%2Fmetrics",
		"/api/records/%2F..", "/api/records/%2e%2e", "/api/records/a%5c..", `/api/records/a\..`, "/api/records;x",
		"/api/records/a;b", "/api/records/../x", "/api/records/./x", "/api/records//x", "/api/records/%00",
		"/api/records/a%zz", "/api/records/caf%C3%A9", "/api/records/" + strings.Repeat("z", 70), "/api/records/",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		got, ok, err := recordsPath(escaped)
		if err != nil && (ok || got != "" || fail.Code(err) != fail.EINVALID) {
			t.Fatalf("recordsPath(%q) = %q, %v, %v: an error must come alone, invalid", escaped, got, ok, err)
		}
		if !ok {
			if got != "" {
				t.Fatalf("recordsPath(%q) = %q without ok", escaped, got)
			}
			return
		}
		if got != "/records" {
			id, found := strings.CutPrefix(got, "/records/")
			if !found || !isID(id) {
				t.Fatalf("recordsPath(%q) = %q, want /records or /records/{id}", escaped, got)
			}
		}
		if strings.ContainsAny(got, `%\;.`) || path.Clean(got) != got {
			t.Fatalf("recordsPath(%q) = %q, which another program could read as another path", escaped, got)
		}
		if "/api"+got != escaped {
			t.Fatalf("recordsPath(%q) = %q, not the path the client asked for", escaped, got)
		}
		u, perr := url.Parse("http://function/prefix" + got)
		if perr != nil || u.Path != "/prefix"+got || u.EscapedPath() != "/prefix"+got {
			t.Fatalf("recordsPath(%q) = %q, read back as %q (%v)", escaped, got, u.Path, perr)
		}
		// The UI's own guard accepts what the proxy accepts.
		if err := checkPath(escaped); err != nil {
			t.Fatalf("checkPath(%q) = %v, but recordsPath accepted it", escaped, err)
		}
	})
}

// FuzzCheckQuery: a query the UI passes on parses without error and gives none of
// the read function's parameters twice, so the function reads the same query.
func FuzzCheckQuery(f *testing.F) {
	for _, seed := range []string{"", "type=bp&q=a+b&limit=5", "type=zzz;q=x", "limit=5&limit=6", "q=%zz", "minSeq=1&minSeq=2", "a=1&a=2"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkQuery(raw) != nil {
			return
		}
		v, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("checkQuery(%q) passed a query that does not parse: %v", raw, err)
		}
		for _, k := range queryParams {
			if len(v[k]) > 1 {
				t.Fatalf("checkQuery(%q) passed %s twice", raw, k)
			}
		}
	})
}
