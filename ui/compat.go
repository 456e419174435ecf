package ui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// maxAnswerBody bounds how much of a function's answer the original endpoints read
// (their own request bodies are bounded by serve.ReadBody).
const maxAnswerBody = 64 << 10

// AddRequest is the body of the original sample's POST /add.
type AddRequest struct {
	DType string `json:"d_type"`
	Data  string `json:"data"`
}

// SearchRequest is the body of the original sample's POST /search. MaxCount came
// from a select, so both 25 and "25" are accepted.
type SearchRequest struct {
	SDType   string         `json:"sd_type"`
	MaxCount jsontext.Value `json:"max_count"`
}

// The bodies as the strict decoder names them in errors, in the original's words.
var (
	addBody = serve.Object{What: "body", Field: "body", Example: `{"d_type":"bp","data":"..."}`,
		Holds: "/add takes d_type and data"}
	searchBody = serve.Object{What: "body", Field: "body", Example: `{"sd_type":"bp","max_count":25}`,
		Holds: "/search takes sd_type and max_count"}
)

// The functions name fields of their own API; an old client knows its own names.
var (
	addFields    = map[string]string{"type": "d_type", "text": "data"}
	searchFields = map[string]string{"type": "sd_type", "limit": "max_count"}
)

// add creates a record through the write function and answers {"success":true}, as
// the original did. It takes JSON from the page's own origin only (writeGuard) and
// decodes it as strictly as the write function decodes POST /records. A record
// stored with fewer replica confirmations than WRITE_REPLICAS asks (the write
// function's 202) is a success too: it is stored, and a retry would store it again.
// The answer then says "replicated":false, in its body and in X-Replicated.
func (s *UI) add(w http.ResponseWriter, r *http.Request) {
	if err := s.writeGuard(r); err != nil {
		serve.Error(w, r, s.log, err)
		return
	}
	body, err := serve.ReadBody(w, r)
	if err != nil {
		serve.Error(w, r, s.log, err)
		return
	}
	var in AddRequest
	if err := addBody.Decode(body, &in); err != nil {
		serve.Error(w, r, s.log, err)
		return
	}
	cmd, _ := json.Marshal(map[string]string{"type": in.DType, "text": in.Data})
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, endpoint(s.writeURL, "/records", nil), bytes.NewReader(cmd))
	if err != nil {
		serve.Error(w, r, s.log, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if ks := r.Header.Values("Idempotency-Key"); len(ks) > 0 {
		// More than one is passed on too, so that the write function refuses it.
		req.Header["Idempotency-Key"] = ks
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.upstreamError(w, r, "write", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		s.relayError(w, resp, "write", addFields)
		return
	}
	var rec struct {
		Replicated *bool `json:"replicated"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBody)).Decode(&rec)
	if resp.StatusCode == http.StatusAccepted || resp.Header.Get("X-Replicated") == "false" || (rec.Replicated != nil && !*rec.Replicated) {
		w.Header().Set("X-Replicated", "false")
		serve.JSON(w, http.StatusOK, map[string]bool{"success": true, "replicated": false})
		return
	}
	serve.JSON(w, http.StatusOK, map[string]bool{"success": true})
}

// search queries the read function and answers the texts, newest first. It writes
// nothing, so it takes a form body as the original did, as well as JSON.
func (s *UI) search(w http.ResponseWriter, r *http.Request) {
	var in SearchRequest
	if err := decodeSearch(w, r, &in); err != nil {
		serve.Error(w, r, s.log, err)
		return
	}
	limit, ok := maxCount(in.MaxCount)
	if !ok {
		serve.Error(w, r, s.log, fail.Invalid("max_count", "max_count must be a whole number, such as 25"))
		return
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if t := strings.TrimSpace(in.SDType); t != "" && !strings.EqualFold(t, "all") {
		q.Set("type", t)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, endpoint(s.readURL, "/records", q), nil)
	if err != nil {
		serve.Error(w, r, s.log, err)
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
		s.relayError(w, resp, "read", searchFields)
		return
	}
	var page struct {
		Records []struct {
			Text string `json:"text"`
		} `json:"records"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&page); err != nil {
		s.log.Warn("read function answered an unreadable page", "err", err)
		badGateway(w, "the read function answered something that is not a page of records")
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
func maxCount(raw jsontext.Value) (int, bool) {
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

// decodeSearch reads /search's body: JSON (decoded strictly), or a form as the
// original Express app accepted, where no field may be given twice. A JSON object
// sent with the form content type (what curl -d does by default) is read as JSON; no
// Content-Type at all means JSON.
func decodeSearch(w http.ResponseWriter, r *http.Request, in *SearchRequest) error {
	ct := cmp.Or(r.Header.Get("Content-Type"), "application/json")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = ct // refused below, named whole
	}
	isForm := mt == "application/x-www-form-urlencoded"
	if !isForm && !serve.IsJSON(mt) {
		return serve.UnsupportedType("Content-Type", mt)
	}
	body, err := serve.ReadBody(w, r)
	if err != nil {
		return err
	}
	if !isForm || bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return searchBody.Decode(body, in)
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return fail.Invalid("body", "malformed form body")
	}
	for k, v := range vals {
		switch {
		case k != "sd_type" && k != "max_count":
			return fail.Invalid(k, fmt.Sprintf("unknown field %q; %s", k, searchBody.Holds))
		case len(v) > 1:
			return fail.Invalid(k, k+" is given more than once; give it once")
		}
	}
	in.SDType = vals.Get("sd_type")
	if v := vals.Get("max_count"); v != "" {
		in.MaxCount = jsontext.Value(strconv.Quote(v))
	}
	return nil
}

// relayError passes a function's error answer on with the old client's field names.
// A redirect is never passed on (the client follows none, see Start).
func (s *UI) relayError(w http.ResponseWriter, resp *http.Response, function string, fields map[string]string) {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		s.upstream.WithLabelValues(function, "redirect").Inc()
		serve.JSON(w, http.StatusBadGateway, redirectError(function, resp))
		return
	}
	var body serve.ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
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
	u.RawQuery = q.Encode() // "" for nil, and base has no query (baseURL)
	return u.String()
}
