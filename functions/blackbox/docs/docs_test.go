// Package docs runs the curl examples of the documentation against the built stack,
// so that what the docs say a request gets is what it gets. An example is a `curl -si`
// line in a ```sh block that ends with a comment "# -> <status>"; the other lines of
// the block (such as ID=$(curl ...)) run before it in the same shell.
package docs

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// documents hold the examples; paths are relative to the module root.
var documents = []string{"README.md", "docs/api.md", "docs/events.md"}

// expect is the annotation of an example line.
var expect = regexp.MustCompile(`\s+#\s*->\s*(\d{3})\s*$`)

// block is the commands of one shell block of a document.
type block struct {
	file     string
	line     int // of the opening fence
	cmds     []testenv.DocCommand
	examples int
}

func TestDocumentedExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.Missing(t, "curl is not installed; run make test, which installs it")
	}
	root, err := launch.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var blocks []block
	examples := 0
	for _, doc := range documents {
		cmds, err := testenv.DocCommands(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			if n := len(blocks); n == 0 || blocks[n-1].file != doc || blocks[n-1].line != c.Block {
				blocks = append(blocks, block{file: doc, line: c.Block})
			}
			b := &blocks[len(blocks)-1]
			b.cmds = append(b.cmds, c)
			if expect.MatchString(c.Text) {
				b.examples++
				examples++
			}
		}
	}
	if examples < 10 {
		t.Fatalf("found %d annotated examples in %v, want the docs' examples (at least 10)", examples, documents)
	}

	st := testenv.StartStack(t, testenv.StackOptions{})
	w, r, u := st.Write, st.Read, st.Page
	ports := strings.NewReplacer(
		"localhost:8080", "127.0.0.1:"+strconv.Itoa(u.Port),
		"localhost:8081", "127.0.0.1:"+strconv.Itoa(w.Port),
		"localhost:8082", "127.0.0.1:"+strconv.Itoa(r.Port))

	// The blocks run in the order the docs give them, as a reader would type them.
	for _, b := range blocks {
		if b.examples == 0 {
			continue // make run, func invoke, ...: for a reader to type
		}
		t.Run(fmt.Sprintf("%s:%d", b.file, b.line), func(t *testing.T) {
			script := []string{checkFunc}
			for _, c := range b.cmds {
				l := ports.Replace(c.Text)
				m := expect.FindStringSubmatch(l)
				if m == nil {
					script = append(script, l)
					continue
				}
				cmd := strings.TrimSpace(l[:len(l)-len(m[0])])
				if !strings.HasPrefix(cmd, "curl -si ") {
					t.Fatalf("line %d: an example must be a curl -si command, got %q", c.Line, cmd)
				}
				script = append(script, fmt.Sprintf("out=$(%s); check %s %d %q \"$out\"", cmd, m[1], c.Line, cmd))
			}
			out, err := exec.Command("bash", "-c", strings.Join(script, "\n")).CombinedOutput()
			if err != nil {
				t.Errorf("%s:\n%s", err, out)
			}
		})
	}
}

// checkFunc compares the status line of curl -si's output with the expected status.
const checkFunc = `check() {
  got=$(printf '%s\n' "$4" | head -n 1 | cut -d' ' -f2)
  if [ "$got" != "$1" ]; then
    printf 'line %s: %s\n  got %s, want %s:\n%s\n' "$2" "$3" "$got" "$1" "$4"
    exit 1
  fi
}`
