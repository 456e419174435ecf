package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDocCommands(t *testing.T) {
	dir := t.TempDir()
	// Each wanted command is "block:line text".
	tests := []struct {
		name, doc string
		want      []string
		wantErr   string
	}{
		{"one command a line, comments and other blocks left out",
			"text\n```sh\n# a comment\ncurl -si localhost:8081   # -> 200\n\nmake run\n```\n```json\n{\"a\": 1}\n```\n```\nnot shell\n```\n",
			[]string{"2:4 curl -si localhost:8081   # -> 200", "2:6 make run"}, ""},
		{"a backslash goes on in the next line",
			"```bash\nfunc invoke --target x \\\n  --format cloudevent\nls\n```\n",
			[]string{"1:2 func invoke --target x   --format cloudevent", "1:4 ls"}, ""},
		{"a backslash and its line break are dropped, as the shell drops them",
			"```sh\necho \"a\\\nb\" c\\\nd\n```\n", []string{`1:2 echo "ab" cd`}, ""},
		{"an open quote goes on, with its newline",
			"```shell\ncurl -d '{\n  \"a\": \"b\"}' x\necho \"two\nlines\"\n```\n",
			[]string{"1:2 curl -d '{\n  \"a\": \"b\"}' x", "1:4 echo \"two\nlines\""}, ""},
		{"quotes in a comment and escaped quotes open nothing",
			"```sh\necho don\\'t # it's fine\necho \"a \\\" b\"\n```\n",
			[]string{`1:2 echo don\'t # it's fine`, `1:3 echo "a \" b"`}, ""},
		{"a comment after a semicolon", "```sh\ncd x;# don't\n```\n", []string{"1:2 cd x;# don't"}, ""},
		{"a console block: the prompt's lines, without the prompt",
			"```console\n$ curl -si x \\\n  -d '{}'\nHTTP/1.1 201 Created\n$ ls\n# a heading\n```\n",
			[]string{"1:2 curl -si x   -d '{}'", "1:5 ls"}, ""},
		{"a block that ends inside a quote", "```sh\nok\necho 'open\n```\n", nil, ":3: the block ends inside this command"},
		{"a file that ends inside a quote", "```sh\necho 'open\n", nil, ":2: the file ends inside this command"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("doc%d.md", i))
			if err := os.WriteFile(path, []byte(tt.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			cmds, err := DocCommands(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v, want an error containing %q", cmds, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cmds {
				if c.File != path {
					t.Errorf("got File %q, want %q", c.File, path)
				}
				got = append(got, fmt.Sprintf("%d:%d %s", c.Block, c.Line, c.Text))
			}
			if strings.Join(got, "\n|") != strings.Join(tt.want, "\n|") {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}
