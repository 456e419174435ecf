// Package faults holds the reliability tests of the two functions: a Sentinel
// failover that must lose no write acknowledged as replicated, replicas and masters
// killed and restarted under load, slow and exhausted Redis connections, and a corpus
// of hostile requests sent to the built binaries. It has no code of its own; every
// test runs real redis-server processes on loopback ports.
package faults
