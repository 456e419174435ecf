package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// console serialises lines from all processes onto one writer.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *console) raw(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(c.w, s)
}

func (c *console) linef(format string, args ...any) {
	c.raw(name + ": " + fmt.Sprintf(format, args...) + "\n")
}

// prefixed writes each complete line of a process' output with its name in front.
type prefixed struct {
	out    *console
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.out.raw(fmt.Sprintf("%-5s | %s\n", p.prefix, p.buf[:i]))
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *prefixed) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.out.raw(fmt.Sprintf("%-5s | %s\n", p.prefix, p.buf))
		p.buf = nil
	}
}
