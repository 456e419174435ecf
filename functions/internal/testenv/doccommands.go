package testenv

import (
	"fmt"
	"os"
	"strings"
)

// DocCommand is one command of a shell block (```sh, ```bash or ```shell) of a
// Markdown file, as a reader would type it: a line that ends in a backslash goes on
// in the next one (joined with a space), and so does a line that ends inside quotes
// (joined with its newline, which the quotes keep).
type DocCommand struct {
	File  string // as given to DocCommands
	Block int    // line of the block's opening fence
	Line  int    // line where the command starts
	Text  string
}

// shellFences are the info strings of the fenced blocks that hold commands.
var shellFences = map[string]bool{"sh": true, "bash": true, "shell": true}

// DocCommands returns the commands of the shell blocks of the Markdown file at path,
// in order. Blank lines and whole-line comments between commands are left out; a
// comment at the end of a command stays with it. A block that ends inside a command
// (a quote left open) is an error naming the command's line.
func DocCommands(path string) ([]DocCommand, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []DocCommand
	block := 0 // line of the open shell block's fence; 0 outside one
	inFence := false
	var cur *DocCommand
	for i, line := range strings.Split(string(b), "\n") {
		n, trim := i+1, strings.TrimSpace(line)
		if strings.HasPrefix(trim, "```") {
			if cur != nil {
				return nil, fmt.Errorf("%s:%d: the block ends inside this command (a quote left open?)", path, cur.Line)
			}
			inFence = !inFence
			block = 0
			if inFence && shellFences[strings.TrimSpace(trim[3:])] {
				block = n
			}
			continue
		}
		if block == 0 {
			continue
		}
		if cur == nil {
			if trim == "" || strings.HasPrefix(trim, "#") {
				continue
			}
			cur = &DocCommand{File: path, Block: block, Line: n}
		}
		cur.Text += line
		switch continued(cur.Text) {
		case backslash:
			cur.Text = strings.TrimSuffix(cur.Text, `\`) + " "
		case quote:
			cur.Text += "\n"
		default:
			cur.Text = strings.TrimSpace(cur.Text)
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: the file ends inside this command", path, cur.Line)
	}
	return out, nil
}

// How a command's text so far goes on.
const (
	ends = iota
	backslash
	quote
)

// continued reads s as a POSIX shell reads quotes, escapes and comments, and says
// whether the command ends with it.
func continued(s string) int {
	var open byte // the quote character that is open, or 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case open == '\'':
			if c == '\'' {
				open = 0
			}
		case c == '\\':
			if i == len(s)-1 {
				return backslash
			}
			i++ // the next character is taken as it is
		case open == '"':
			if c == '"' {
				open = 0
			}
		case c == '\'' || c == '"':
			open = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			// A comment runs to the end of the line.
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return ends
			}
			i += j
		}
	}
	if open != 0 {
		return quote
	}
	return ends
}
