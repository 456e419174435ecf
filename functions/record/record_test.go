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
		{"unicode letters", "Ünïcode straße Ωmega 東京", []string{"ünïcode", "straße", "ωmega", "東京"}},
		{"combining marks stay in the word", "cafe\u0301 au lait", []string{"cafe\u0301", "au", "lait"}},
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
