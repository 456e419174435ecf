// Package function is the write function as knative/func builds it: its Go
// scaffolding for instanced functions imports the package at the root of the
// module that holds func.yaml and calls New. The root func.yaml describes cqrs-write
// because func builds one function per module; cqrs-read and cqrs-ui are built by
// ko from knative/.
package function

import "github.com/cqrs-knative/cqrs-knative/functions/write"

// New returns the write function; the scaffolding starts and serves it.
func New() *write.Function { return write.New() }
