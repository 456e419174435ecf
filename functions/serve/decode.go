package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// Object describes the JSON object a request must hold, for the messages of its
// errors. All services decode their JSON input with it, so they refuse the same
// things the same way.
type Object struct {
	// What is the input's name in messages, such as "body" or "event data".
	What string
	// Field names the input as a whole in errors, such as "body" or "data".
	Field string
	// Prefix goes before the name of a field of the object in errors ("data.").
	Prefix string
	// Example is a valid object, shown when the input is not one.
	Example string
	// Holds says which fields the object has, for the unknown-field message.
	Holds string
}

// Decode reads body, one JSON object, into v (a pointer to a struct) strictly: an
// empty body, bytes that are not UTF-8 (encoding/json would replace them), anything
// but one object, a key given twice (encoding/json keeps the last, other parsers the
// first, so a proxy that checked the object could mean another one), a key v does not
// have, a value of the wrong type, and a lone UTF-16 surrogate escape (encoding/json
// would store U+FFFD instead) are each refused with a 400 naming the field.
func (o Object) Decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fail.Invalid(o.Field, fmt.Sprintf("%s is empty; send %s", o.What, o.Example))
	}
	if !utf8.Valid(body) {
		return fail.Invalid(o.invalidUTF8Field(body), o.What+" is not valid UTF-8")
	}
	if known := fieldNames(v); !plainObject(body, known) {
		if err := o.checkKeys(body, known); err != nil {
			return err
		}
	}
	if loneSurrogate(body) {
		field := o.surrogateField(body)
		return fail.Invalid(field, fmt.Sprintf("%s holds a lone UTF-16 surrogate escape (such as \\ud800), which is no character; send the text as valid UTF-8 or as escaped surrogate pairs", field))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return o.typeError(err)
	}
	return nil
}

// plainObject reports, without allocating, whether body is what nearly every
// request holds: exactly one valid JSON object whose top-level keys are known and
// distinct (matched without regard to case) and hold no escapes. When it is not
// sure, it says false and checkKeys, which names what is wrong, decides.
func plainObject(body []byte, known []string) bool {
	if !json.Valid(body) {
		return false
	}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	var seen [8]string
	n := 0
	i = skipSpace(body, i+1)
	for i < len(body) && body[i] == '"' {
		end := i + 1
		for end < len(body) && body[end] != '"' {
			if body[end] == '\\' {
				return false
			}
			end++
		}
		key := string(body[i+1 : end])
		if n == len(seen) || !slicesContainsFold(known, key) {
			return false
		}
		for _, k := range seen[:n] {
			if strings.EqualFold(k, key) {
				return false
			}
		}
		seen[n] = key
		n++
		// Skip ':' and the value, which json.Valid has checked: count brackets outside
		// strings until the ',' or '}' that ends it.
		i = skipSpace(body, end+1) + 1
		depth := 0
		for ; i < len(body); i++ {
			switch c := body[i]; c {
			case '"':
				for i++; i < len(body) && body[i] != '"'; i++ {
					if body[i] == '\\' {
						i++
					}
				}
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			if depth < 0 || depth == 0 && body[i] == ',' {
				break
			}
		}
		if i >= len(body) {
			return false
		}
		if body[i] == ',' {
			i = skipSpace(body, i+1)
			continue
		}
		return true // the object's closing brace; json.Valid says nothing but space follows
	}
	return i < len(body) && body[i] == '}' && n == 0
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// checkKeys scans the object's top level: one object, no key twice, every key known
// (matched without regard to case, as encoding/json matches them), nothing after it.
func (o Object) checkKeys(body []byte, known []string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	t, err := dec.Token()
	if err != nil {
		return o.syntaxError(err)
	}
	if t != json.Delim('{') {
		return fail.Invalid(o.Field, fmt.Sprintf("%s must be a JSON object %s, not %s", o.What, o.Example, jsonKind(t)))
	}
	var seen []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return o.syntaxError(err)
		}
		k, _ := t.(string)
		for _, s := range seen {
			if strings.EqualFold(s, k) {
				return fail.Invalid(o.Prefix+k, fmt.Sprintf("%s is given more than once; give it once", k))
			}
		}
		seen = append(seen, k)
		if !slicesContainsFold(known, k) {
			return fail.Invalid(o.Prefix+k, fmt.Sprintf("unknown field %q; %s", k, o.Holds))
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return o.syntaxError(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return o.syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail.Invalid(o.Field, o.What+" holds more than one JSON value")
	}
	return nil
}

func (o Object) syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fail.Invalid(o.Field, fmt.Sprintf("malformed JSON in %s at byte %d: %v", o.What, se.Offset, se))
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fail.Invalid(o.Field, "malformed JSON in "+o.What+": unexpected end")
	}
	return fail.Invalid(o.Field, fmt.Sprintf("malformed JSON in %s: %v", o.What, err))
}

func (o Object) typeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fail.Invalid(o.Prefix+te.Field, fmt.Sprintf("%s must be a JSON %s, not %s", te.Field, kindName(te.Type), te.Value))
	}
	return o.syntaxError(err)
}

// surrogateField names the top-level field whose value holds a lone surrogate
// escape, or the whole input when a key holds it.
func (o Object) surrogateField(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) == nil {
		for k, v := range m {
			if loneSurrogate(v) {
				return o.Prefix + k
			}
		}
	}
	return o.Field
}

// invalidUTF8Field names the top-level field whose value holds the bad bytes.
func (o Object) invalidUTF8Field(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) == nil {
		for k, v := range m {
			if !utf8.Valid(v) || !utf8.ValidString(k) {
				return o.Prefix + strings.ToValidUTF8(k, "?")
			}
		}
	}
	return o.Field
}

// fieldNames are the JSON names of the fields of the struct v points to.
func fieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

func slicesContainsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}

// kindName says what a Go type holds in JSON words.
func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	}
	return t.Kind().String()
}

// jsonKind names the JSON value that a first token opens.
func jsonKind(t json.Token) string {
	switch t.(type) {
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}
