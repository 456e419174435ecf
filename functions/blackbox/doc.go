// Package blackbox tests the write and read functions together, from the outside:
// over HTTP on a real Redis master and replica, in process and as built binaries.
package blackbox
