package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		text  string
		parts int
		want  Token
	}{
		{"", 1, nil},
		{"0:abc123.42", 1, Token{{0, "abc123", 42}}},
		{"0:a.0", 1, Token{{0, "a", 0}}},
		{"1:e1.7,3:e3.4294967295", 4, Token{{1, "e1", 7}, {3, "e3", 4294967295}}},
	} {
		got, err := ParseToken(tt.text, tt.parts)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseToken(%q, %d) = %v, %v; want %v", tt.text, tt.parts, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.text {
			t.Errorf("ParseToken(%q).String() = %q, want it back", tt.text, s)
		}
	}
}

func TestParseTokenRefuses(t *testing.T) {
	for _, tt := range []struct {
		text  string
		parts int
	}{
		{"42", 1}, {"0:abc", 1}, {"0:.4", 1}, {"1:abc.4", 1}, {"0:ABC.4", 1}, {"0:abc.-1", 1},
		{"0:abc.4294967296", 1}, {"0:abc.01", 1}, {"00:abc.1", 2}, {"1:a.1,0:b.1", 2}, {"1:a.1,1:b.1", 2},
		{"0:" + strings.Repeat("a", 33) + ".1", 1}, {"0:a.1,", 1}, {",0:a.1", 1}, {"0:a b.1", 1},
		{strings.Repeat("0:a.1,", 1000), 1}, {"0:a\u00e9.1", 1},
	} {
		if got, err := ParseToken(tt.text, tt.parts); !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseToken(%q, %d) = %v, %v; want ErrBadToken", tt.text, tt.parts, got, err)
		}
	}
}

func TestParseCursor(t *testing.T) {
	for _, tt := range []struct {
		text  string
		parts int
		want  Cursor
		bad   bool
	}{
		{"17", 1, Cursor{{0, "", 17}}, false},                     // a cursor of the layout before epochs
		{"0:e.17", 1, Cursor{{0, "e", 17}}, false},                //
		{"0:.1,1:e.5", 2, Cursor{{0, "", 1}, {1, "e", 5}}, false}, // a partition empty when the page was read
		{"17", 2, nil, true},                                      // a plain seq names no partition of several
		{"0:e.5", 2, nil, true},                                   // a cursor names every partition
		{"0", 1, nil, true},
		{"0:e.0", 1, nil, true}, // cursors hold positions from 1
		{"-3", 1, nil, true},
	} {
		got, err := ParseCursor(tt.text, tt.parts)
		if tt.bad {
			if !errors.Is(err, ErrBadToken) {
				t.Errorf("ParseCursor(%q, %d) = %v, %v; want ErrBadToken", tt.text, tt.parts, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseCursor(%q, %d) = %v, %v; want %v", tt.text, tt.parts, got, err, tt.want)
		}
	}
}

func TestTokenJoin(t *testing.T) {
	for _, tt := range []struct {
		a, b, want string
	}{
		{"", "", ""},
		{"0:e.4", "", "0:e.4"},
		{"", "0:e.4", "0:e.4"},
		{"0:e.4", "0:e.9", "0:e.9"},
		{"0:e.9", "0:e.4", "0:e.9"},
		{"0:old.9", "0:new.4", "0:new.4"}, // another history: the newer answer's
		{"0:a.1,2:c.3", "1:b.2,2:c.5", "0:a.1,1:b.2,2:c.5"},
	} {
		a, _ := ParseToken(tt.a, 3)
		b, _ := ParseToken(tt.b, 3)
		if got := a.Join(b).String(); got != tt.want {
			t.Errorf("%q.Join(%q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}
