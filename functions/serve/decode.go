package serve

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

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
	// Open takes members that v does not name (into its ",unknown" field) instead
	// of refusing them.
	Open bool
}

// strict are json/v2's semantics with unknown members refused too. Its defaults
// already refuse what encoding/json lets through: a name given twice (parsers
// disagree on which value wins, so a proxy that checked the object could mean
// another one), bytes that are not UTF-8 and lone UTF-16 surrogate escapes (which
// encoding/json turns into U+FFFD), names matched in another case, and values of
// another type (a string for a number, 5.5 for a whole number).
var strict, open = json.RejectUnknownMembers(true), json.RejectUnknownMembers(false)

// Decode reads body, one JSON object, into v (a pointer to a struct) strictly, and
// refuses anything else with an invalid error naming the field at fault: the input
// as a whole (o.Field) or the member the error points at (o.Prefix + its name).
func (o Object) Decode(body []byte, v any) error {
	// json/v2 takes an empty input for an error without a word of what is wrong,
	// and null for an object; neither is one.
	rest := bytes.TrimLeft(body, " \t\r\n")
	if len(rest) == 0 {
		return fail.Invalidf(o.Field, "%s is empty; send %s", o.What, o.Example)
	}
	if k := jsontext.Value(rest).Kind(); k != '{' && k != 0 {
		return fail.Invalidf(o.Field, "%s must be a JSON object %s, not %s", o.What, o.Example, kindName(k))
	}
	opts := strict
	if o.Open {
		opts = open
	}
	if err := json.Unmarshal(body, v, opts); err != nil {
		return o.refusal(err)
	}
	return nil
}

// refusal turns a json/v2 error into an invalid error naming the member it points at.
func (o Object) refusal(err error) error {
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	var ptr jsontext.Pointer
	switch {
	case errors.As(err, &sem):
		ptr = sem.JSONPointer
	case errors.As(err, &syn):
		ptr = syn.JSONPointer
	}
	field, name := o.Field, o.What
	// A cut-off input is the whole input's fault, wherever it stops.
	if ptr != "" && !errors.Is(err, io.ErrUnexpectedEOF) {
		name = strings.Join(slices.Collect(ptr.Tokens()), ".")
		field = o.Prefix + name
	}
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return fail.Invalidf(field, "%s is given more than once; give it once", name)
	case errors.Is(err, json.ErrUnknownName):
		return fail.Invalidf(field, "unknown field %q; %s", name, o.Holds)
	case sem != nil && sem.GoType != nil:
		return fail.Invalidf(field, "%s must be a JSON %s, not %s", name, goKind(sem.GoType), kindName(sem.JSONKind))
	case syn != nil:
		return fail.Invalidf(field, "malformed JSON in %s at byte %d: %v", name, syn.ByteOffset, syn.Err)
	}
	return fail.Invalidf(field, "malformed JSON in %s: %v", name, err)
}

// goKind says what a Go type holds in JSON words.
func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.Kind().String()
}

// kindNames name the JSON kinds as messages do.
var kindNames = map[jsontext.Kind]string{
	'{': "an object", '[': "an array", '"': "a string", '0': "a number",
	't': "a boolean", 'f': "a boolean", 'n': "null",
}

// kindName names a JSON kind as a message does; an invalid kind is malformed JSON.
func kindName(k jsontext.Kind) string {
	return cmp.Or(kindNames[k], "malformed JSON")
}
