package write

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

func (f *Function) create(w http.ResponseWriter, r *http.Request) {
	in, err := decodeCreate(w, r)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	seen, err := f.seenToken(r.Header)
	if err != nil {
		f.fail(w, r, err)
		return
	}
	claim, err := idempotencyClaim(r.Header.Values("Idempotency-Key"))
	if err != nil {
		f.fail(w, r, err)
		return
	}
	ans, created, err := f.Create(r.Context(), in, claim, seen)
	if fail.Code(err) == fail.ECONFLICT {
		err = &fail.Error{Code: fail.ECONFLICT, Field: "Idempotency-Key", Err: err,
			Message: "this Idempotency-Key was already used for a different record; send new content with a new key"}
	}
	if err != nil {
		f.fail(w, r, err)
		return
	}
	token := ans.Token.String()
	w.Header().Set("Location", "/records/"+ans.ID)
	w.Header().Set(record.TokenHeader, token)
	if ans.Replicated != nil {
		w.Header().Set("X-Replicated", strconv.FormatBool(*ans.Replicated))
	}
	status := http.StatusCreated
	if ans.Replicated != nil && !*ans.Replicated {
		// Stored on the master, but not yet as durable as WRITE_REPLICAS asks: a
		// failover now could lose it, so this is not the plain 201 of a durable write.
		status = http.StatusAccepted
	}
	if !created {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	serve.RawJSON(w, status, ans.appendJSON(token, "\n"))
}

// seenToken reads the token the client holds, if it sends one, so that the answer's
// token also covers what the client read or wrote before.
func (f *Function) seenToken(h http.Header) (store.Token, error) {
	vs := h.Values(record.TokenHeader)
	if len(vs) == 0 {
		return nil, nil
	}
	if len(vs) > 1 {
		return nil, fail.Invalidf(record.TokenHeader, "%s is given %d times; send the newest token once", record.TokenHeader, len(vs))
	}
	t, err := store.ParseToken(vs[0], f.store.Partitions())
	if err != nil {
		return nil, fail.Invalidf(record.TokenHeader, "%s: %v; send a token an answer carried, or none", record.TokenHeader, err)
	}
	return t, nil
}

func (f *Function) fail(w http.ResponseWriter, r *http.Request, err error) {
	f.metrics.failures.WithLabelValues(fail.Code(err)).Inc()
	serve.Error(w, r, f.log, err)
}

// idempotencyClaim is the claim of the Idempotency-Key header ks, "" for none. The
// key is bounded to what fits a Redis key comfortably and prints cleanly in logs.
func idempotencyClaim(ks []string) (store.Claim, error) {
	switch {
	case len(ks) == 0:
		return "", nil
	case len(ks) > 1:
		return "", fail.Invalid("Idempotency-Key", "Idempotency-Key is given more than once; give it once")
	case ks[0] == "" || len(ks[0]) > 255:
		return "", fail.Invalid("Idempotency-Key", "Idempotency-Key must be 1 to 255 characters")
	case strings.ContainsFunc(ks[0], func(r rune) bool { return r < 0x21 || r > 0x7e }):
		return "", fail.Invalid("Idempotency-Key", "Idempotency-Key must be printable ASCII without spaces")
	}
	return store.HTTPClaim(ks[0]), nil
}
