// Package docs runs the curl examples of the documentation against the built stack,
// so that what the docs say a request gets is what it gets. An example is a `curl -si`
// line in a ```sh block that ends with a comment "# -> <status>"; the other lines of
// the block (such as ID=$(curl ...)) run before it in the same shell.
package docs

import (
	"bufio"
	"fmt"
	"os"
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

// block is one ```sh block of a document.
type block struct {
	file  string
	line  int // of the opening fence
	lines []string
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
		bs, err := shellBlocks(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			b.file = doc
			n := 0
			for _, l := range b.lines {
				if expect.MatchString(l) {
					n++
				}
			}
			if n > 0 {
				blocks = append(blocks, b)
				examples += n
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
		t.Run(fmt.Sprintf("%s:%d", b.file, b.line), func(t *testing.T) {
			script := []string{checkFunc}
			for i, l := range b.lines {
				l = ports.Replace(l)
				m := expect.FindStringSubmatch(l)
				if m == nil {
					script = append(script, l)
					continue
				}
				cmd := strings.TrimSpace(l[:len(l)-len(m[0])])
				if !strings.HasPrefix(cmd, "curl -si ") {
					t.Fatalf("line %d: an example must be a curl -si command, got %q", b.line+1+i, cmd)
				}
				script = append(script, fmt.Sprintf("out=$(%s); check %s %d %q \"$out\"", cmd, m[1], b.line+1+i, cmd))
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

// shellBlocks returns the ```sh blocks of a Markdown file, with continuation lines
// joined.
func shellBlocks(path string) ([]block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []block
	var cur *block
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(l) == "```sh":
			cur = &block{line: n}
		case cur != nil && strings.TrimSpace(l) == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			if k := len(cur.lines); k > 0 && strings.HasSuffix(cur.lines[k-1], `\`) {
				cur.lines[k-1] = strings.TrimSuffix(cur.lines[k-1], `\`) + " " + strings.TrimSpace(l)
				continue
			}
			cur.lines = append(cur.lines, l)
		}
	}
	return out, sc.Err()
}
