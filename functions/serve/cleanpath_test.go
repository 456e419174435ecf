package serve

import "testing"

func TestCleanPath(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"", true},
		{"/", true},
		{"//", true},
		{"/records", true},
		{"/records/", true},
		{"/records/abc", true},
		{"/records/abc/", true},
		{"/a.b/..c/...", true},
		{"records", false},
		{"//x", false},
		{"/records//x", false},
		{"/records//", false},
		{"/.", false},
		{"/..", false},
		{"/./", false},
		{"/a/./b", false},
		{"/records/../metrics", false},
		{"/records/..", false},
	} {
		if got := cleanPath(tt.path); got != tt.want {
			t.Errorf("cleanPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func BenchmarkCleanPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		cleanPath("/records/12-abcdefgh")
	}
}
