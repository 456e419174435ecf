package read

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

func (f *Function) list(w http.ResponseWriter, r *http.Request) {
	v, err := queryValues(r.URL.RawQuery)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	h, err := minSeqHeader(r.Header)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	q, err := f.ParseQuery(v, h)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	res, served, err := f.Query(r.Context(), q)
	setServed(w.Header(), served)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	writeResult(w, res)
}

func (f *Function) get(w http.ResponseWriter, r *http.Request, id string) {
	v, err := queryValues(r.URL.RawQuery)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	h, err := minSeqHeader(r.Header)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	minSeq, err := parseMinSeq(v.Get("minSeq"), h)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	var doc json.RawMessage
	served, err := f.consistent(r.Context(), minSeq, false, func(ctx context.Context, s *store.Store) (int64, error) {
		var seq int64
		var err error
		doc, seq, err = s.GetDoc(ctx, id)
		return seq, err
	})
	setServed(w.Header(), served)
	if err == nil && doc == nil {
		// Not found is an answer, as the store had caught up with minSeq.
		err = &fail.Error{Code: fail.ENOTFOUND, Field: "id", Message: "no record with id " + strconv.Quote(id)}
	}
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)+1))
	w.Write(append(doc, '\n'))
}

// minSeqHeader is X-Min-Seq, refused when given more than once: taking one of them
// would read with a consistency the client may not have asked for.
func minSeqHeader(h http.Header) (string, error) {
	if v := h.Values("X-Min-Seq"); len(v) > 1 {
		return "", fail.Invalidf("X-Min-Seq", "X-Min-Seq is given %d times; give it once", len(v))
	}
	return h.Get("X-Min-Seq"), nil
}

// setServed says who answered; an error before any Redis answered says nothing.
func setServed(h http.Header, s Served) {
	if s.By == "" {
		return
	}
	h.Set("X-Served-By", s.By)
	h.Set("X-Replica-Seq", strconv.FormatInt(s.Seq, 10))
}
