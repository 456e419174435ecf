package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// CheckLog fails the test for each complete line of a service's output that is not
// one JSON object with every key once. The services log JSON lines, and a key
// written twice is read differently by different log tools (first wins, last wins,
// or the line is refused).
func CheckLog(tb testing.TB, name, output string) {
	tb.Helper()
	complete, _, _ := cutLast(output, "\n")
	for i, line := range strings.Split(complete, "\n") {
		if line == "" {
			continue
		}
		if err := oneObject(line); err != nil {
			tb.Errorf("%s, log line %d: %v: %s", name, i+1, err, line)
		}
	}
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return "", s, false
}

// oneObject returns an error unless line is exactly one JSON object in which no
// object holds a key twice. Only the syntax counts: numbers are not converted.
func oneObject(line string) error {
	type frame struct {
		object  bool
		keys    map[string]bool
		wantKey bool
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var stack []*frame
	for n := 0; ; n++ {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if n == 0 || len(stack) > 0 {
				return errors.New("unexpected end of JSON")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 && tok != json.Delim('{') {
			return errors.New("not a JSON object")
		}
		if n > 0 && len(stack) == 0 {
			return errors.New("more than one JSON value")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &frame{object: tok == json.Delim('{'), keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		if !top.object {
			continue
		}
		if top.wantKey {
			k := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("key %q twice", k)
			}
			top.keys[k] = true
		}
		top.wantKey = !top.wantKey
	}
}
