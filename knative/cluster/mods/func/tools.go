//go:build tools

// Package tools pins the func CLI.
package tools

import _ "knative.dev/func/cmd/func"
