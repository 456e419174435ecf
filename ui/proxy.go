package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// Headers the page may send to a function and a function may send back. Everything
// else (cookies, caching, upstream security headers) stays on its side.
var (
	requestHeaders = []string{"Accept", "Content-Type", "Idempotency-Key", "X-Consistency-Token", "X-Min-Seq", "User-Agent", "Traceparent", "Tracestate"}
	// ResponseHeaders are the function headers the proxy passes to the page.
	ResponseHeaders = []string{"Content-Type", "Content-Length", "Location", "X-Consistency-Token", "X-Replica-Seq", "X-Served-By",
		"X-Replicated", "Retry-After", "Idempotent-Replayed", "Allow"}
)

// pathKey carries the checked function path from the handler to Rewrite.
type pathKey struct{}

// proxy forwards /api/records... to target/records... of the named function. The
// function path is built from the escaped path after checkPath and recordsPath
// accept it, and the query is passed on unchanged only after checkQuery accepts it;
// anything else is refused before a request leaves the UI.
func (s *UI) proxy(function string, target *url.URL) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The function knows /records, not /api/records: SetURL joins target's
			// path with the checked path.
			pr.Out.URL.Path, pr.Out.URL.RawPath = pr.In.Context().Value(pathKey{}).(string), ""
			pr.SetURL(target)
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Header = pick(pr.In.Header, requestHeaders)
			if pr.Out.Header.Get("User-Agent") == "" {
				pr.Out.Header["User-Agent"] = nil // no Go default agent either
			}
			pr.SetXForwarded()
		},
		Transport: s.transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header = pick(resp.Header, ResponseHeaders)
			switch {
			case resp.StatusCode >= 300 && resp.StatusCode < 400:
				// A redirect would send the browser to a path the UI never checked,
				// or to the function's own host; the UI never passes one on.
				s.upstream.WithLabelValues(function, "redirect").Inc()
				replaceBody(resp, http.StatusBadGateway, redirectError(function, resp))
			case resp.StatusCode >= 400 && !serve.IsJSON(resp.Header.Get("Content-Type")):
				// An ingress or activator error page is HTML from another service;
				// the page expects JSON and must never render foreign markup.
				replaceBody(resp, resp.StatusCode, serve.ErrorBody{Error: fmt.Sprintf("the %s function answered %s", function, resp.Status)})
			}
			if loc := resp.Header.Get("Location"); loc == "/records" || strings.HasPrefix(loc, "/records/") {
				resp.Header.Set("Location", "/api"+loc)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.upstreamError(w, r, function, err)
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, ok, perr := recordsPath(r.URL.EscapedPath())
		if perr == nil && !ok {
			perr = serve.NotFound(r.URL.Path)
		}
		if perr == nil {
			perr = checkQuery(r.URL.RawQuery)
		}
		if perr == nil && r.Method == http.MethodPost {
			perr = s.writeGuard(r)
		}
		if perr != nil {
			serve.Error(w, r, s.log, perr)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), pathKey{}, path))
		if r.Method != http.MethodPost {
			// The read function takes no body; none is passed on.
			r.Body, r.ContentLength = http.NoBody, 0
		} else {
			// The whole body first, within the runtime's bounds (413 over 64 KiB, 408
			// when it stalls), so the function never gets half a request.
			body, err := serve.ReadBody(w, r)
			if err != nil {
				serve.Error(w, r, s.log, err)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			r.TransferEncoding = nil
		}
		rp.ServeHTTP(w, r)
	})
}

// redirectError says that function answered a redirect, and where it pointed.
func redirectError(function string, resp *http.Response) serve.ErrorBody {
	msg := fmt.Sprintf("the %s function answered %s", function, resp.Status)
	if loc := resp.Header.Get("Location"); loc != "" {
		msg += fmt.Sprintf(" to %q", loc)
	}
	return serve.ErrorBody{Error: msg + "; the UI does not follow or pass on redirects", Code: "upstream_redirect"}
}

// replaceBody turns resp into a JSON answer with status and body.
func replaceBody(resp *http.Response, status int, body serve.ErrorBody) {
	b, _ := json.Marshal(body)
	b = append(b, '\n')
	resp.Body.Close()
	resp.StatusCode = status
	resp.Status = fmt.Sprintf("%d %s", status, http.StatusText(status))
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Location")
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
}

// upstreamError answers a request that got no answer from function: 503 (retry)
// when the function did not answer in time, 502 when it cannot be reached at all.
func (s *UI) upstreamError(w http.ResponseWriter, r *http.Request, function string, err error) {
	var ne net.Error
	switch {
	case r.Context().Err() != nil:
		// The browser went away; nobody reads this answer.
		s.upstream.WithLabelValues(function, "canceled").Inc()
		w.WriteHeader(http.StatusBadGateway)
		return
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		s.upstream.WithLabelValues(function, "timeout").Inc()
		serve.Error(w, r, s.log, fail.Unavailable(fmt.Sprintf("the %s function did not answer within %s; retry shortly", function, s.cfg.ProxyTimeout), err))
	default:
		s.upstream.WithLabelValues(function, "unreachable").Inc()
		s.log.Warn("function unreachable", "function", function, "path", r.URL.Path, "err", err)
		badGateway(w, fmt.Sprintf("the %s function is unreachable", function))
	}
}

// badGateway answers 502: the function behind the UI failed, and no code of the UI's
// own names that.
func badGateway(w http.ResponseWriter, msg string) {
	serve.JSON(w, http.StatusBadGateway, serve.ErrorBody{Error: msg})
}

func pick(h http.Header, keep []string) http.Header {
	out := make(http.Header, len(keep))
	for _, k := range keep {
		if v, ok := h[k]; ok {
			out[k] = v
		}
	}
	return out
}
