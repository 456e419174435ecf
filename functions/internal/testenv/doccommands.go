package testenv

import (
	"fmt"
	"os"
	"strings"
)

// DocCommand is one command of a shell block of a Markdown file, as a reader would
// type it: a line that ends in a backslash goes on in the next one (the backslash
// and the line break dropped, as the shell drops them), and so does a line that ends
// inside quotes (the line break kept, as the quotes keep it).
type DocCommand struct {
	File  string // as given to DocCommands
	Block int    // line of the block's opening fence
	Line  int    // line where the command starts
	Text  string
}

// shellFences are the info strings of the fenced blocks that hold commands. In a
// console block only lines that start with the prompt "$ " are commands; the others
// are what the commands printed.
var shellFences = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true}

// DocCommands returns the commands of the shell blocks of the Markdown file at path,
// in order. Blank lines and whole-line comments between commands are left out; a
// comment at the end of a command stays with it. A block that ends inside a command
// (a quote left open, a trailing backslash) is an error naming the command's line.
// Commands are split at line ends only: a line that ends in a pipe or && is a
// command of its own, and here-documents are not read.
func DocCommands(path string) ([]DocCommand, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []DocCommand
	block, fence := 0, "" // the open shell block's fence line and info string
	inFence := false
	var cur *DocCommand
	for i, line := range strings.Split(string(b), "\n") {
		n, trim := i+1, strings.TrimSpace(line)
		if strings.HasPrefix(trim, "```") {
			if cur != nil {
				return nil, fmt.Errorf("%s:%d: the block ends inside this command (an open quote or a trailing backslash)", path, cur.Line)
			}
			inFence = !inFence
			block, fence = 0, strings.TrimSpace(trim[3:])
			if inFence && shellFences[fence] {
				block = n
			}
			continue
		}
		if block == 0 {
			continue
		}
		if cur == nil {
			if fence == "console" {
				cmd, ok := strings.CutPrefix(trim, "$ ")
				if !ok {
					continue // output
				}
				line, trim = cmd, cmd
			}
			if trim == "" || strings.HasPrefix(trim, "#") {
				continue
			}
			cur = &DocCommand{File: path, Block: block, Line: n}
		}
		cur.Text += line
		switch continued(cur.Text) {
		case afterBackslash:
			cur.Text = strings.TrimSuffix(cur.Text, `\`)
		case insideQuotes:
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

// continuation is how a command's text so far goes on.
type continuation int

const (
	ends continuation = iota
	afterBackslash
	insideQuotes
)

// continued reads s as a POSIX shell reads quotes, escapes and comments, and says
// whether the command ends with it.
func continued(s string) continuation {
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
				return afterBackslash
			}
			i++ // the next character is taken as it is
		case open == '"':
			if c == '"' {
				open = 0
			}
		case c == '\'' || c == '"':
			open = c
		case c == '#' && (i == 0 || strings.IndexByte(" \t\n;&|()<>", s[i-1]) >= 0):
			// A comment runs to the end of the line.
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return ends
			}
			i += j
		}
	}
	if open != 0 {
		return insideQuotes
	}
	return ends
}
