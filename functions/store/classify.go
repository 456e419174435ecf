package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/redis/go-redis/v9"
)

// classify turns Redis failures that a retry may cure (connection refused, timeouts,
// a master that became a replica, a replica still loading) into EUNAVAILABLE, so
// clients get 503 + Retry-After; anything else stays an internal error.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), isConnErr(err):
		return record.Unavailable("redis is unavailable", err)
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "BUSY", "TRYAGAIN", "CLUSTERDOWN"} {
		if redis.HasErrorPrefix(err, p) {
			return record.Unavailable("redis is unavailable", err)
		}
	}
	return fmt.Errorf("redis: %w", err)
}

func isConnErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "EOF") || strings.Contains(s, "connection refused") ||
		strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "no such host") || strings.Contains(s, "i/o timeout")
}
