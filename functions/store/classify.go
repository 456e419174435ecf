package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// Kinds of Redis trouble that callers act on differently. A Redis that is down may
// be replaced by another one (the read side falls back to the master); a Redis that
// is slow or busy must not be given the same work elsewhere, where it would make
// that one slow too.
var (
	errDown = errors.New("down")
	errSlow = errors.New("slow")
)

// Down reports whether err says that Redis could not be reached or was not serving:
// refused or broken connections, a replica still loading or cut off from its master.
func Down(err error) bool { return errors.Is(err, errDown) }

// classify turns Redis failures that a retry may cure into unavailable errors, so clients
// get 503 + Retry-After, and marks them down or slow; anything else stays an
// internal error.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if r := refusedAccess(err); r != nil {
		return r
	}
	if r := refusal(err); r != nil {
		return r
	}
	if kind := kindOf(err); kind != nil {
		return fail.Unavailable("redis is unavailable", fmt.Errorf("%w: %w", kind, err))
	}
	return fmt.Errorf("redis: %w", err)
}

func kindOf(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errNoReplica), errors.Is(err, errClusterDown):
		return errDown
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, redis.ErrPoolTimeout), errors.As(err, &ne) && ne.Timeout():
		return errSlow
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, redis.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return errDown
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "CLUSTERDOWN", "MOVED"} {
		if redis.HasErrorPrefix(err, p) {
			return errDown
		}
	}
	for _, p := range []string{"BUSY", "TRYAGAIN", "ASK"} {
		if redis.HasErrorPrefix(err, p) {
			return errSlow
		}
	}
	return nil
}

// sentUnanswered reports whether err came after a command was written to Redis and
// before its answer arrived: Redis may or may not have run it. Errors before the
// command left (no connection, no free connection, a failed write, which leaves at
// most part of a command that Redis never runs) and error replies from Redis
// itself are not of this kind.
func sentUnanswered(err error) bool {
	var oe *net.OpError
	switch {
	case errors.As(err, &oe):
		return oe.Op == "read"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	return false
}

// outcomeUnknown is the error of a create that Redis may or may not have stored.
func outcomeUnknown(err error) error {
	return &fail.Error{Code: fail.EUNKNOWN, Err: err,
		Message: "outcome unknown: the command reached Redis but no answer came back; retry with the same Idempotency-Key"}
}

// refusal turns what Redis or the create script refused before writing anything
// into an error of its own code: a full Redis (maxmemory with noeviction), a
// partition at one of its limits, a full outbox. Each message names the setting or
// limit at fault.
func refusal(err error) error {
	msg := err.Error()
	switch {
	case redis.HasErrorPrefix(err, "OOM"):
		return &fail.Error{Code: fail.EFULL, Err: err,
			Message: "the store is full: Redis has reached its maxmemory; nothing was stored; retry later, and give Redis more memory"}
	case redis.HasErrorPrefix(err, "CQRSLIMIT"):
		return &fail.Error{Code: fail.ELIMIT, Err: err,
			Message: "the store cannot take this record: " + strings.TrimPrefix(msg, "CQRSLIMIT ") + "; nothing was stored"}
	case redis.HasErrorPrefix(err, "CQRSOUTBOX"):
		return &fail.Error{Code: fail.EOUTBOX, Err: err,
			Message: strings.TrimPrefix(msg, "CQRSOUTBOX ") + " (its sink is down or refusing); nothing was stored; retry later"}
	case redis.HasErrorPrefix(err, "CQRSPARTS"):
		stored, configured, _ := strings.Cut(strings.TrimPrefix(msg, "CQRSPARTS "), " ")
		n, _ := strconv.Atoi(configured)
		return partitionsDiffer(stored, n)
	}
	return nil
}
