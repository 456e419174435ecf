package serve

import (
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// Readiness turns a function's readiness check into what its probes may say: a
// short reason that names no address (the fail.Error's message, such as "redis is
// unavailable"), under either runtime, knative.dev/func-go's too, which prints the
// error it gets. The cause goes to the log, once each time readiness changes.
type Readiness struct{ down atomic.Bool }

// Report returns Ready's answer for the result of its check.
func (rd *Readiness) Report(log *slog.Logger, err error) (bool, error) {
	if err == nil {
		if rd.down.Swap(false) {
			log.Info("ready again")
		}
		return true, nil
	}
	if !rd.down.Swap(true) {
		log.Warn("not ready", "err", err)
	}
	reason := &fail.Error{Code: fail.EUNAVAILABLE, Message: "not ready"}
	var e *fail.Error
	if errors.As(err, &e) {
		reason.Code, reason.Message = e.Code, e.Message
	}
	return false, reason
}
