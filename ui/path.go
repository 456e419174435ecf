package ui

import (
	"net/url"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// The proxy forwards only paths it can name exactly. A path is checked in its
// escaped form, as the client sent it, because that is what a function, an ingress
// or a file server behind the UI may decode again: a segment that decodes to "." or
// "..", an encoded slash, a backslash or a semicolon could make another program read
// another path than the one the UI checked.

// maxIDLen bounds a record id in a path, with room to spare: the write function's ids
// ("{seq}-{tag}") are at most 19 characters.
const maxIDLen = 64

// recordsPrefix is where the proxy's paths start on the UI; the functions know the
// same paths without it.
const recordsPrefix = "/api/records"

// checkPath refuses an escaped path that has a segment another program could read
// differently: "." or ".." (also when encoded), an encoded slash (%2F), a backslash
// (also %5C), a semicolon (also %3B), a control character, or a bad escape. It runs
// before any route, so neither the proxy nor the file server sees such a path.
func checkPath(escaped string) error {
	for _, seg := range strings.Split(escaped, "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return fail.Invalidf("path", "path segment %q holds a malformed %%-escape", seg)
		}
		switch {
		case dec == "." || dec == "..":
			return fail.Invalidf("path", "path segment %q is a dot segment; send the path without . or ..", seg)
		case strings.Contains(dec, "/"):
			return fail.Invalidf("path", "path segment %q holds an encoded slash", seg)
		case strings.Contains(dec, `\`):
			return fail.Invalidf("path", "path segment %q holds a backslash", seg)
		case strings.Contains(dec, ";"):
			return fail.Invalidf("path", "path segment %q holds a semicolon", seg)
		case strings.ContainsFunc(dec, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return fail.Invalidf("path", "path segment %q holds a control character", seg)
		}
	}
	return nil
}

// recordsPath returns the path on a function for an escaped path on the UI:
// /api/records -> /records and /api/records/{id} -> /records/{id}, where id is 1 to
// 64 ASCII letters, digits, '-' or '_', sent unescaped (the write function's ids
// are digits, '-' and a-z). ok is false for a path of another shape (the caller answers
// 404); err is set for a path that is refused outright (400).
func recordsPath(escaped string) (path string, ok bool, err error) {
	if err := checkPath(escaped); err != nil {
		return "", false, err
	}
	rest, found := strings.CutPrefix(escaped, recordsPrefix)
	switch {
	case !found:
		return "", false, nil
	case rest == "":
		return "/records", true, nil
	case rest[0] != '/' || rest == "/" || strings.Contains(rest[1:], "/"):
		return "", false, nil
	}
	id := rest[1:]
	if !isID(id) {
		return "", false, fail.Invalidf("path", "record id %q is not 1 to %d letters, digits, - or _", id, maxIDLen)
	}
	return "/records/" + id, true, nil
}

// idChars are the characters a record id may hold in a path.
const idChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

func isID(s string) bool {
	return s != "" && len(s) <= maxIDLen && strings.Trim(s, idChars) == ""
}

// queryParams are the read function's parameters; it refuses any of them given twice.
var queryParams = []string{"type", "q", "limit", "cursor", "token", "minSeq"}

// checkQuery applies the read function's rules to a raw query before the UI passes
// it on unchanged: it must parse (no bad escape, no semicolon) and give none of the
// read function's parameters twice. A query the function would refuse is refused
// here the same way, instead of being changed into one it accepts.
func checkQuery(raw string) error {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return fail.Invalidf("query", "malformed query string: %v", err)
	}
	for _, k := range queryParams {
		if n := len(v[k]); n > 1 {
			return fail.Invalidf(k, "%s is given %d times; give it once", k, n)
		}
	}
	return nil
}
