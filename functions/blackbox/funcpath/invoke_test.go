package funcpath

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// The local stack's addresses (make run) that the documented invoke lines target.
const (
	localWrite = "http://localhost:8081"
	localRead  = "http://localhost:8082"
)

// invokeLine is one documented `func invoke` (or `kn func invoke`) command.
type invokeLine struct {
	where string   // file:line
	text  string   // as written
	args  []string // after "func"
}

// flag returns the value of --name in the line's arguments.
func (l invokeLine) flag(name string) string {
	for i, a := range l.args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
		if a == "--"+name && i+1 < len(l.args) {
			return l.args[i+1]
		}
	}
	return ""
}

// targetVars are the shell variables that documented lines may target: the README
// names the Services' URLs so (WRITE=$(kn service describe cqrs-write -o url)).
var targetVars = map[string]string{"WRITE": localWrite, "READ": localRead}

// documentedInvokes returns every func invoke or kn func invoke command of the shell
// blocks of docs/func.md and README.md.
func documentedInvokes(t *testing.T, root string) []invokeLine {
	t.Helper()
	var lines []invokeLine
	for _, name := range []string{"docs/func.md", "README.md"} {
		cmds, err := testenv.DocCommands(filepath.Join(root, name))
		if errors.Is(err, os.ErrNotExist) && name == "README.md" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			where := name + ":" + strconv.Itoa(c.Line)
			rest, ok := strings.CutPrefix(c.Text, "func invoke ")
			if !ok {
				rest, ok = strings.CutPrefix(c.Text, "kn func invoke ")
			}
			if !ok {
				continue
			}
			words, err := shellWords(rest, targetVars)
			if err != nil {
				t.Fatalf("%s: %v: %s", where, err, c.Text)
			}
			lines = append(lines, invokeLine{where: where, text: c.Text, args: append([]string{"invoke"}, words...)})
		}
	}
	return lines
}

// shellWords splits a command line as a POSIX shell does for plain words, single-
// and double-quoted strings and $NAME or ${NAME} from vars; anything else is refused.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'
		name, end := "", i+1
		if strings.HasPrefix(s[i+1:], "{") {
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return 0, errors.New("unterminated ${")
			}
			name, end = s[i+2:i+j], i+j+1
		} else {
			for end < len(s) && (s[end] == '_' || 'A' <= s[end] && s[end] <= 'Z' || 'a' <= s[end] && s[end] <= 'z' || '0' <= s[end] && s[end] <= '9') {
				end++
			}
			name = s[i+1 : end]
		}
		v, ok := vars[name]
		if !ok {
			return 0, fmt.Errorf("$%s: the test knows no such variable", name)
		}
		w.WriteString(v)
		return end - 1, nil
	}
	for i := 0; i < len(s); i++ {
		var err error
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated '")
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '$':
					i, err = expand(i)
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"$\\`+"`", s[i+1]) >= 0:
					i++
					w.WriteByte(s[i])
				case s[i] == '`':
					err = errors.New("command substitution")
				default:
					w.WriteByte(s[i])
				}
				if err != nil {
					return nil, err
				}
			}
			if i >= len(s) {
				return nil, errors.New(`unterminated "`)
			}
			inWord = true
		case c == '$':
			if i, err = expand(i); err != nil {
				return nil, err
			}
			inWord = true
		case c == '#' && !inWord:
			i = len(s) // a comment
		case strings.IndexByte("`\\|;&<>(){}*?[#~", c) >= 0:
			return nil, fmt.Errorf("%q: shell syntax beyond plain words, quotes and variables", c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// event is a CloudEvent as func invoke prints it.
type event struct {
	attrs map[string]string
	data  []byte
}

// parseEvent reads func invoke's printout of the reply event (the CloudEvents SDK's
// Event.String): attribute lines, then "Data," and the data.
func parseEvent(out string) (event, error) {
	ev := event{attrs: map[string]string{}}
	head, data, ok := strings.Cut(out, "\nData,\n")
	if !ok {
		return ev, errors.New("no reply event")
	}
	for _, l := range strings.Split(head, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ": "); ok {
			ev.attrs[k] = v
		}
	}
	ev.data = []byte(data)
	return ev, nil
}

// TestFuncInvoke runs knative/func's CLI from the repository root, as a user would,
// with every invoke line of docs/func.md and README.md, against the built functions
// on a real master and replica: the create lines against cqrs-write (the ko image's
// runtime and the func-go build), the query lines against cqrs-read.
func TestFuncInvoke(t *testing.T) {
	root := repoRoot(t)
	lines := documentedInvokes(t, root)
	var creates, queries []invokeLine
	for _, l := range lines {
		switch target, typ := l.flag("target"), l.flag("type"); {
		case target == localWrite && typ == record.EventCreate:
			creates = append(creates, l)
		case target == localRead && typ == record.EventQuery:
			queries = append(queries, l)
		default:
			t.Errorf("%s: %s\n  runs against neither the local write (%s, --type %s) nor read function (%s, --type %s)",
				l.where, l.text, localWrite, record.EventCreate, localRead, record.EventQuery)
		}
		if l.flag("format") != "cloudevent" {
			t.Errorf("%s: no --format cloudevent: func.yaml says invoke: http, so func would send a plain POST", l.where)
		}
	}
	inDocs := func(ls []invokeLine) bool {
		return slices.ContainsFunc(ls, func(l invokeLine) bool { return strings.HasPrefix(l.where, "docs/func.md:") })
	}
	if !inDocs(creates) || !inDocs(queries) {
		t.Fatalf("docs/func.md must show a create and a query invoke line; found %d creates and %d queries in all", len(creates), len(queries))
	}

	fn := funcCLI(t)
	testenv.RequireRedis(t)
	pair := testenv.Redis(t)
	w := testenv.Start(t, testenv.Build(t, testenv.WriteMain), "REDIS_ADDR="+pair.Master.Addr())
	r := testenv.Start(t, testenv.Build(t, testenv.ReadMain), "REDIS_ADDR="+pair.Replica.Addr(), "REDIS_MASTER_ADDR="+pair.Master.Addr())
	fg := testenv.Start(t, funcGoWrite(t), "REDIS_ADDR="+pair.Master.Addr())
	for _, p := range []*launch.Proc{w, r, fg} {
		testenv.Ready(t, p, 10*time.Second)
	}
	defer unchanged(t, filepath.Join(root, ".gitignore"))()
	env := funcEnv(t, os.Getenv("PATH"))

	// invoke runs one line against url instead of the local stack's address and
	// returns the reply event.
	invoke := func(l invokeLine, local, url string) event {
		t.Helper()
		args := make([]string, len(l.args))
		for i, a := range l.args {
			args[i] = strings.ReplaceAll(a, local, url)
		}
		cmd := exec.Command(fn, args...)
		cmd.Dir, cmd.Env = root, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		t.Logf("%s against %s (%s):\n%s", l.where, url, time.Since(start).Round(time.Millisecond), out)
		if err != nil {
			t.Fatalf("%s: func %s: %v\n%s", l.where, strings.Join(args, " "), err, stderr.String())
		}
		// func invoke exits 0 even when the function refuses the event (400): only the
		// printed reply tells.
		ev, err := parseEvent(string(out))
		if err != nil {
			t.Fatalf("%s: %v in func's output:\n%s%s", l.where, err, out, stderr.String())
		}
		return ev
	}

	var stored []record.Record
	for _, l := range creates {
		var sent record.Create
		if err := json.Unmarshal([]byte(l.flag("data")), &sent); err != nil {
			t.Fatalf("%s: --data: %v", l.where, err)
		}
		for _, target := range []struct{ name, url string }{{"ko runtime", w.URL()}, {"func-go build", fg.URL()}} {
			ev := invoke(l, localWrite, target.url)
			var rec record.Record
			if err := json.Unmarshal(ev.data, &rec); err != nil || ev.attrs["type"] != record.EventCreated ||
				rec.ID == "" || rec.Type != sent.Type || rec.Text != sent.Text {
				t.Errorf("%s (%s): reply %v %s (%v), want %s with the record of %s/%s", l.where, target.name,
					ev.attrs, ev.data, err, record.EventCreated, sent.Type, sent.Text)
			}
			stored = append(stored, rec)
		}
	}

	// The replica has every create before the queries run, so that they find them.
	last := stored[len(stored)-1].Seq
	if resp, body := get(t, r.URL()+"/records?limit=1&minSeq="+strconv.FormatInt(last, 10)); resp.StatusCode != http.StatusOK {
		t.Fatalf("waiting for seq %d on the replica: %d %s", last, resp.StatusCode, body)
	}
	for _, l := range queries {
		var asked struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(l.flag("data")), &asked); err != nil {
			t.Fatalf("%s: --data: %v", l.where, err)
		}
		ev := invoke(l, localRead, r.URL())
		var page struct {
			Records []record.Record `json:"records"`
		}
		if err := json.Unmarshal(ev.data, &page); err != nil || ev.attrs["type"] != record.EventResult || len(page.Records) == 0 {
			t.Errorf("%s: reply %v %s (%v), want %s with a page of the records stored above", l.where, ev.attrs, ev.data, err, record.EventResult)
			continue
		}
		// Redis holds only what the create lines stored: the page must be made of those.
		for _, p := range page.Records {
			if !slices.Contains(stored, p) || asked.Type != "" && p.Type != asked.Type {
				t.Errorf("%s: the page holds %+v, not one of the records of type %q the create lines stored", l.where, p, asked.Type)
			}
		}
	}
}
