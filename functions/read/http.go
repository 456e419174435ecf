package read

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

func (f *Function) list(w http.ResponseWriter, r *http.Request) {
	in, err := httpInput(r)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	q, err := f.query(in)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	res, served, err := f.Query(r.Context(), q)
	token := setServed(w.Header(), served)
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	// The page's token is the one that answered (Query sets it from served).
	res.writeJSON(w, token)
}

func (f *Function) get(w http.ResponseWriter, r *http.Request, id string) {
	in, err := httpInput(r)
	if err == nil && (in.Type != "" || in.Q != "" || in.Limit != nil || in.Cursor != "") {
		err = fail.Invalid("query", "a record is read by its id alone; type, q, limit and cursor select pages of GET /records")
	}
	var need store.Need
	if err == nil {
		need, err = f.need(in)
	}
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	var got store.Got
	served, err := f.consistent(r.Context(), need, false, func(ctx context.Context, s *store.Store) (outcome, error) {
		var err error
		got, err = s.GetDoc(ctx, id, need)
		return gotOutcome(got), err
	})
	setServed(w.Header(), served)
	if err == nil && got.Doc == nil {
		// Not found is an answer, as the store had caught up with what the read needs.
		err = &fail.Error{Code: fail.ENOTFOUND, Field: "id", Message: "no record with id " + strconv.Quote(id)}
	}
	if err != nil {
		serve.Error(w, r, f.log, err)
		return
	}
	serve.RawJSON(w, http.StatusOK, append(got.Doc, '\n'))
}

// httpParams are the query parameters of GET /records; each may be given once.
var httpParams = []string{"type", "q", "limit", "cursor", "token", "minSeq"}

// httpInput reads a read's parameters from r strictly: a malformed query string,
// or a parameter or consistency header given twice, is refused, since dropping or
// picking one would answer a read the client did not send. The token may come as
// the parameter token or the header X-Consistency-Token, minSeq as the parameter
// or X-Min-Seq; the parameter wins.
func httpInput(r *http.Request) (input, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return input{}, fail.Invalidf("query", "malformed query string: %v", err)
	}
	for _, k := range httpParams {
		if n := len(v[k]); n > 1 {
			return input{}, fail.Invalidf(k, "%s is given %d times; give it once", k, n)
		}
	}
	for _, h := range []string{record.TokenHeader, "X-Min-Seq"} {
		if n := len(r.Header.Values(h)); n > 1 {
			return input{}, fail.Invalidf(h, "%s is given %d times; give it once", h, n)
		}
	}
	in := input{Type: v.Get("type"), Q: v.Get("q"), Cursor: v.Get("cursor"), tokenField: "token", minSeqField: "minSeq"}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return in, fail.Invalidf("limit", "limit must be a whole number from 1 to %d", MaxLimit)
		}
		in.Limit = &n
	}
	if in.Token = v.Get("token"); in.Token == "" {
		in.Token, in.tokenField = r.Header.Get(record.TokenHeader), record.TokenHeader
	}
	s := v.Get("minSeq")
	if s == "" {
		s, in.minSeqField = r.Header.Get("X-Min-Seq"), "X-Min-Seq"
	}
	if s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return in, fail.Invalidf(in.minSeqField, "%s must be a whole number, the seq of a record", in.minSeqField)
		}
		in.MinSeq = &n
	}
	return in, nil
}

// setServed says who answered and where it had got, and returns the token it set;
// an error before any Redis answered says nothing.
func setServed(h http.Header, s Served) (token string) {
	if s.By == "" {
		return ""
	}
	h.Set("X-Served-By", s.By)
	if s.HasSeq {
		h.Set("X-Replica-Seq", strconv.FormatInt(s.Seq, 10))
	}
	if len(s.Token) > 0 {
		token = s.Token.String()
		h.Set(record.TokenHeader, token)
	}
	return token
}
