package record

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

func TestTokenize(t *testing.T) {
	many := make([]string, 70)
	for i := range many {
		many[i] = fmt.Sprintf("w%d", i)
	}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"punctuation only", "!!! ...", nil},
		{"lower-cases", "Hello WORLD", []string{"hello", "world"}},
		{"drops duplicates in any case", "Go go GO gopher", []string{"go", "gopher"}},
		{"splits on punctuation", "e-mail, x.y;z", []string{"e", "mail", "x", "y", "z"}},
		{"keeps digits", "route 66 and r2d2", []string{"route", "66", "and", "r2d2"}},
		{"unicode letters", "Ünïcode straße Ωmega 東京", []string{"ünïcode", "strasse", "ωmega", "東京"}},
		{"combining marks stay in the word", "cafe\u0301 au lait", []string{"caf\u00e9", "au", "lait"}},
		{"a leading mark is no word", "\u0301x", []string{"x"}},
		{"markup is split to words", "<img src=x onerror=alert(1)>", []string{"img", "src", "x", "onerror", "alert", "1"}},
		{"at most 64 words", strings.Join(many, " "), many[:MaxWordsPerRecord]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tokenize(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Tokenize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidatorCheck(t *testing.T) {
	v := NewValidator(DefaultTypes, 10)
	tests := []struct {
		name      string
		in        Create
		wantText  string
		wantField string
	}{
		{"ok", Create{"bp", "hello"}, "hello", ""},
		{"trims", Create{"cmt", "  hi \n"}, "hi", ""},
		{"exactly the limit", Create{"rvw", "0123456789"}, "0123456789", ""},
		{"over the limit after trimming", Create{"rvw", "0123456789a"}, "", "text"},
		{"limit counts bytes", Create{"rvw", "ääääää"}, "", "text"},
		{"missing type", Create{"", "x"}, "", "type"},
		{"unknown type", Create{"blog", "x"}, "", "type"},
		{"blank text", Create{"bp", " \t\n"}, "", "text"},
		{"a zero-width space alone", Create{"bp", "\u200b"}, "", "text"},
		{"invisible format characters alone", Create{"bp", " \ufeff\u2060\u200c\u200d\u00ad "}, "", "text"},
		{"a zero-width space inside a word stays", Create{"bp", "a\u200bb"}, "a\u200bb", ""},
		{"invalid utf-8", Create{"bp", "a\xffb"}, "", "text"},
		{"NUL", Create{"bp", "a\x00b"}, "", "text"},
		{"escape", Create{"bp", "a\x1b[31mred"}, "", "text"},
		{"tabs and line breaks", Create{"bp", "a\tb\r\nc"}, "a\tb\r\nc", ""},
		{"C1 CSI", Create{"bp", "a\u009b31mred"}, "", "text"},
		{"C1 next line", Create{"bp", "a\u0085b"}, "", "text"},
		{"DEL", Create{"bp", "a\u007fb"}, "", "text"},
		{"no-break space and letters past C1 stay", Create{"bp", "x\u00a0\u00e9"}, "x\u00a0\u00e9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Check(tt.in)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Check(%+v) = %v, want no error", tt.in, err)
				}
				if got.Text != tt.wantText {
					t.Errorf("Check(%+v).Text = %q, want %q", tt.in, got.Text, tt.wantText)
				}
				return
			}
			e, ok := err.(*fail.Error)
			if !ok {
				t.Fatalf("Check(%+v) error = %v, want *fail.Error", tt.in, err)
			}
			if e.Code != fail.EINVALID || e.Field != tt.wantField {
				t.Errorf("Check(%+v) = code %q field %q, want %q %q", tt.in, e.Code, e.Field, fail.EINVALID, tt.wantField)
			}
		})
	}
}

// TestTokenizeFindsEqualWords: words that people read as equal index as one word, so
// a search for either finds both: composed and decomposed accents (NFC and NFD), case
// in any script (Greek final sigma, German sharp s), full-width and ligature forms.
func TestTokenizeFindsEqualWords(t *testing.T) {
	for _, tt := range []struct{ a, b string }{
		{"caf\u00e9", "cafe\u0301"},
		{"CAF\u00c9", "cafe\u0301"},
		{"ΟΔΟΣ", "οδος"},
		{"ΟΔΟΣ", "οδοσ"},
		{"straße", "STRASSE"},
		{"Straße", "strasse"},
		{"ＫＮＡＴＩＶＥ", "knative"},
		{"１２３", "123"},
		{"ﬁle", "FILE"},
		{"Ǆ", "ǆ"},
		{"ǅ", "DŽ"},
	} {
		a, b := Tokenize(tt.a), Tokenize(tt.b)
		if !reflect.DeepEqual(a, b) || len(a) != 1 {
			t.Errorf("Tokenize(%q) = %q, Tokenize(%q) = %q; want the same one word", tt.a, a, tt.b, b)
		}
	}
}

// FuzzTokenize: the search form is a fixed point, so what the write side indexed and
// what a query asks for meet however often either is normalized: tokenizing the words
// of a text again gives the same words, and each word is its own search form.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", "Hello WORLD", "cafe\u0301 CAF\u00c9", "ΟΔΟΣ straße ＫＮ", "ﬁ ǅ İstanbul ẞ",
		"\u0345\u0399\u0308\u0301", "a\u0301\u0302\u0303", "\u1e9b\u0323", "ᾈ ᾳ ΐ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		words := Tokenize(text)
		for _, w := range words {
			if n := Normalize(w); n != w {
				t.Fatalf("Tokenize(%q) holds %q, whose search form is %q", text, w, n)
			}
		}
		if again := Tokenize(strings.Join(words, " ")); len(words) < MaxWordsPerRecord && !reflect.DeepEqual(again, words) {
			t.Fatalf("Tokenize(%q) = %q, but its words tokenize to %q", text, words, again)
		}
		if n := Normalize(text); Normalize(n) != n {
			t.Fatalf("Normalize(%q) = %q, whose search form is %q", text, n, Normalize(n))
		}
	})
}
