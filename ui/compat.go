package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// maxCompatBody bounds the original endpoints' bodies, as the functions bound theirs.
const maxCompatBody = 64 << 10

// AddRequest is the body of the original sample's POST /add.
type AddRequest struct {
	DType string `json:"d_type"`
	Data  string `json:"data"`
}

// SearchRequest is the body of the original sample's POST /search. MaxCount came
// from a select, so both 25 and "25" are accepted.
type SearchRequest struct {
	SDType   string          `json:"sd_type"`
	MaxCount json.RawMessage `json:"max_count"`
}

// The functions name fields of their own API; an old client knows its own names.
var (
	addFields    = map[string]string{"type": "d_type", "text": "data"}
	searchFields = map[string]string{"type": "sd_type", "limit": "max_count"}
)

// add creates a record through the write function and answers {"success":true}.
func (s *UI) add(w http.ResponseWriter, r *http.Request) {
	var in AddRequest
	if err := decodeCompat(w, r, &in, func(f url.Values) { in.DType, in.Data = f.Get("d_type"), f.Get("data") }); err != nil {
		writeError(w, err.status, err.msg, err.field)
		return
	}
	body, _ := json.Marshal(map[string]string{"type": in.DType, "text": in.Data})
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, endpoint(s.writeURL, "/records", nil), bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot build the request", "")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		req.Header.Set("Idempotency-Key", k)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.upstreamError(w, r, "write", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		relayError(w, resp, "write", addFields)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxCompatBody))
	serve.JSON(w, http.StatusOK, map[string]bool{"success": true})
}

// search queries the read function and answers the texts, newest first.
func (s *UI) search(w http.ResponseWriter, r *http.Request) {
	var in SearchRequest
	if err := decodeCompat(w, r, &in, func(f url.Values) {
		in.SDType = f.Get("sd_type")
		if v := f.Get("max_count"); v != "" {
			in.MaxCount = json.RawMessage(strconv.Quote(v))
		}
	}); err != nil {
		writeError(w, err.status, err.msg, err.field)
		return
	}
	limit, ok := maxCount(in.MaxCount)
	if !ok {
		writeError(w, http.StatusBadRequest, "max_count must be a whole number, such as 25", "max_count")
		return
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if t := strings.TrimSpace(in.SDType); t != "" && !strings.EqualFold(t, "all") {
		q.Set("type", t)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, endpoint(s.readURL, "/records", q), nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot build the request", "")
		return
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.upstreamError(w, r, "read", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		relayError(w, resp, "read", searchFields)
		return
	}
	var page struct {
		Records []struct {
			Text string `json:"text"`
		} `json:"records"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&page); err != nil {
		s.log.Warn("read function answered an unreadable page", "err", err)
		writeError(w, http.StatusBadGateway, "the read function answered something that is not a page of records", "")
		return
	}
	texts := make([]string, 0, len(page.Records))
	for _, rec := range page.Records {
		texts = append(texts, rec.Text)
	}
	for _, k := range []string{"X-Replica-Seq", "X-Served-By"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	serve.JSON(w, http.StatusOK, texts)
}

// maxCount reads max_count: absent means the original's default of 25.
func maxCount(raw json.RawMessage) (int, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 25, true
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(uq)
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

type compatError struct {
	status     int
	msg, field string
}

// decodeCompat reads a JSON body into v, or a form body through form, as the
// original Express app accepted both. A JSON object sent with the form content type
// (what curl -d does by default) is read as JSON.
func decodeCompat(w http.ResponseWriter, r *http.Request, v any, form func(url.Values)) *compatError {
	mt := "application/json"
	if ct := r.Header.Get("Content-Type"); ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return &compatError{http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q is not supported; send application/json", ct), "Content-Type"}
		}
	}
	isForm := mt == "application/x-www-form-urlencoded"
	if !isForm && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return &compatError{http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q is not supported; send application/json", mt), "Content-Type"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCompatBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &compatError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over %d bytes", maxCompatBody), "body"}
	}
	if err != nil {
		return &compatError{http.StatusBadRequest, "cannot read the body", "body"}
	}
	trimmed := bytes.TrimSpace(body)
	if isForm && !bytes.HasPrefix(trimmed, []byte("{")) {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return &compatError{http.StatusBadRequest, "malformed form body", "body"}
		}
		form(vals)
		return nil
	}
	if len(trimmed) == 0 {
		return &compatError{http.StatusBadRequest, "body is empty", "body"}
	}
	var te *json.UnmarshalTypeError
	err = json.Unmarshal(trimmed, v)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return &compatError{http.StatusBadRequest, fmt.Sprintf("%s must be a JSON %s", te.Field, te.Type.Kind()), te.Field}
	}
	return &compatError{http.StatusBadRequest, "malformed JSON body", "body"}
}

// relayError passes a function's error answer on with the old client's field names.
func relayError(w http.ResponseWriter, resp *http.Response, function string, fields map[string]string) {
	var body serve.ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxCompatBody))
	if !serve.IsJSON(resp.Header.Get("Content-Type")) || json.Unmarshal(raw, &body) != nil || body.Error == "" {
		body = serve.ErrorBody{Error: fmt.Sprintf("the %s function answered %s", function, resp.Status)}
	}
	if f, ok := fields[body.Field]; ok {
		body.Field = f
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		w.Header().Set("Retry-After", v)
	}
	serve.JSON(w, resp.StatusCode, body)
}

// endpoint is base with path appended and query set.
func endpoint(base *url.URL, path string, q url.Values) string {
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + path
	u.RawPath = ""
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
