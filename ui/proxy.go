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

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// maxProxyBody bounds what the UI forwards; the write function refuses bodies over
// 64 KiB itself and says so, so anything up to a little more passes through to it.
const maxProxyBody = 1 << 20

// Headers the page may send to a function and a function may send back. Everything
// else (cookies, caching, upstream security headers) stays on its side.
var (
	requestHeaders = []string{"Accept", "Content-Type", "Idempotency-Key", "X-Min-Seq", "User-Agent", "Traceparent", "Tracestate"}
	// ResponseHeaders are the function headers the proxy passes to the page.
	ResponseHeaders = []string{"Content-Type", "Content-Length", "Location", "X-Replica-Seq", "X-Served-By",
		"X-Replicated", "Retry-After", "Idempotency-Key", "Idempotent-Replayed", "Allow"}
)

// proxy forwards /api/records... to target/records... of the named function.
func (s *UI) proxy(function string, target *url.URL) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// SetURL joins the paths; the function knows /records, not /api/records.
			pr.Out.URL.Path = strings.TrimSuffix(target.Path, "/") + strings.TrimPrefix(pr.In.URL.Path, "/api")
			pr.Out.URL.RawPath = ""
			pr.Out.Header = pick(pr.In.Header, requestHeaders)
			if pr.Out.Header.Get("User-Agent") == "" {
				pr.Out.Header["User-Agent"] = nil // no Go default agent either
			}
			pr.SetXForwarded()
		},
		Transport: s.transport,
		ModifyResponse: func(resp *http.Response) error {
			resp.Header = pick(resp.Header, ResponseHeaders)
			if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/records") {
				resp.Header.Set("Location", "/api"+loc)
			}
			if resp.StatusCode >= 400 && !serve.IsJSON(resp.Header.Get("Content-Type")) {
				// An ingress or activator error page is HTML from another service;
				// the page expects JSON and must never render foreign markup.
				msg := fmt.Sprintf("the %s function answered %s", function, resp.Status)
				b, _ := jsonLine(serve.ErrorBody{Error: msg})
				resp.Body.Close()
				resp.Body = io.NopCloser(bytes.NewReader(b))
				resp.ContentLength = int64(len(b))
				resp.Header.Set("Content-Type", "application/json")
				resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.upstreamError(w, r, function, err)
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxProxyBody)
		}
		rp.ServeHTTP(w, r)
	})
}

// upstreamError answers a request that got no answer from function: 413 for a body
// over the proxy's limit, 503 (retry) when the function did not answer in time, 502
// when it cannot be reached at all.
func (s *UI) upstreamError(w http.ResponseWriter, r *http.Request, function string, err error) {
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over %d bytes", tooBig.Limit), "body")
		return
	case r.Context().Err() != nil:
		// The browser went away; nobody reads this answer.
		s.metrics.upstream.WithLabelValues(function, "canceled").Inc()
		w.WriteHeader(http.StatusBadGateway)
		return
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		s.metrics.upstream.WithLabelValues(function, "timeout").Inc()
		s.log.Warn("function did not answer in time", "function", function, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the %s function did not answer within %s; retry shortly", function, s.cfg.ProxyTimeout), "")
	default:
		s.metrics.upstream.WithLabelValues(function, "unreachable").Inc()
		s.log.Warn("function unreachable", "function", function, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, fmt.Sprintf("the %s function is unreachable", function), "")
	}
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

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(b, '\n'), err
}
