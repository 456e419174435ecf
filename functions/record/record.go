// Package record holds the CQRS record model: validation, the search tokenizer,
// and the CloudEvent type names.
package record

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// Record is one stored command result as both functions return it.
type Record struct {
	ID        string    `json:"id" redis:"id"`
	Seq       int64     `json:"seq" redis:"seq"`
	Type      string    `json:"type" redis:"type"`
	Text      string    `json:"text" redis:"text"`
	CreatedAt time.Time `json:"createdAt" redis:"-"`
}

// Create is the body of a create command.
type Create struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Default limits; the functions make both configurable.
const (
	// DefaultMaxTextBytes bounds a record's text after trimming.
	DefaultMaxTextBytes = 4096
	// MaxWordsPerRecord bounds the search index entries one record may add.
	MaxWordsPerRecord = 64
)

// DefaultTypes are the record types of the original sample: Blog post, Comment, Review.
var DefaultTypes = []string{"bp", "cmt", "rvw"}

// Event types exchanged through a Knative Broker. Reply types never equal a
// request type, so a reply sent back to the Broker cannot trigger another request.
const (
	EventCreate  = "dev.cqrs.record.create"
	EventCreated = "dev.cqrs.record.created"
	EventQuery   = "dev.cqrs.records.query"
	EventResult  = "dev.cqrs.records.result"
)

// The consistency token (see docs/api.md): answers carry it in TokenHeader (events in
// the extension TokenExtension) and clients send the newest they hold back the same
// way, or, on GET /records, as the query parameter "token".
const (
	TokenHeader    = "X-Consistency-Token"
	TokenExtension = "consistencytoken"
)

// CheckTypes reports whether types can serve as the configured record types: at
// least one, each a short lower-case name that fits a Redis key and a URL as is.
func CheckTypes(types []string) error {
	if len(types) == 0 {
		return errors.New("must name at least one type")
	}
	for i, t := range types {
		if t == "" || len(t) > 32 || strings.Trim(t, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return fmt.Errorf("%q is not a type name (a-z, 0-9, - and _, at most 32)", t)
		}
		// The UI refuses a list with a type twice; so do the functions, so that the
		// same RECORD_TYPES starts all three or none.
		if slices.Contains(types[:i], t) {
			return fmt.Errorf("%q is given twice", t)
		}
	}
	return nil
}

// Validator checks create commands against the configured types and text limit.
type Validator struct {
	types        []string
	maxTextBytes int
}

// NewValidator returns a Validator for the given record types and text limit.
func NewValidator(types []string, maxTextBytes int) *Validator {
	return &Validator{types: slices.Clone(types), maxTextBytes: maxTextBytes}
}

// Check validates c and returns it normalised (text trimmed), or an invalid error
// that names the offending field.
func (v *Validator) Check(c Create) (Create, error) {
	if c.Type == "" {
		return c, fail.Invalid("type", "type is required")
	}
	if !slices.Contains(v.types, c.Type) {
		return c, fail.Invalidf("type", "unknown type %q; known: %s", c.Type, strings.Join(v.types, ", "))
	}
	if !utf8.ValidString(c.Text) {
		return c, fail.Invalid("text", "text is not valid UTF-8")
	}
	c.Text = strings.TrimSpace(c.Text)
	if c.Text == "" {
		return c, fail.Invalid("text", "text is required")
	}
	if strings.TrimFunc(c.Text, invisible) == "" {
		return c, fail.Invalid("text", "text is required: it holds only invisible characters")
	}
	if len(c.Text) > v.maxTextBytes {
		return c, fail.Invalidf("text", "text is %d bytes, at most %d allowed", len(c.Text), v.maxTextBytes)
	}
	if i := strings.IndexFunc(c.Text, isControl); i >= 0 {
		return c, fail.Invalidf("text", "text holds the control character %U at byte %d; only tab and line breaks are allowed", []rune(c.Text[i:])[0], i)
	}
	return c, nil
}

// invisible reports the characters that show nothing: white space and the format
// characters (category Cf), such as the zero-width space U+200B, the byte order mark
// U+FEFF and the word joiner U+2060. A text of nothing else looks blank.
func invisible(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) }

// isControl reports the characters a record text may not hold: C0 controls other
// than tab and line breaks, DEL, and the C1 controls U+0080 to U+009F (such as CSI
// U+009B and NEL U+0085), which no one types and which break logs and terminals that
// show the text.
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f)
}
