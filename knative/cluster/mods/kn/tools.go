//go:build tools

// Package tools pins kn.
package tools

import _ "knative.dev/client/cmd/kn"
