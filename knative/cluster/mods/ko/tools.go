//go:build tools

// Package tools pins ko.
package tools

import _ "github.com/google/ko"
