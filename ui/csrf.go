package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// The UI's writing endpoints (POST /api/records and POST /add) are protected from
// cross-site request forgery by two rules, checked in this order:
//
//  1. Origin: a browser tells where a POST comes from. Sec-Fetch-Site: cross-site is
//     refused, and so is an Origin header whose host (with its port) is not the host
//     the request was sent to, or that is "null" (sandboxed frames, files). A request
//     with neither header comes from a program such as curl, which no other site
//     can steer, and passes.
//  2. Content type: the body must be JSON (application/json or a +json type). A page
//     of another site can send only form, multipart or text/plain bodies without a
//     CORS preflight, and the UI answers no preflight, so it cannot send JSON here.
//
// Either rule alone stops a cross-site form; together they also cover old browsers
// that send no Origin and clients that send no Sec-Fetch-Site.

// crossSite returns a 403 for a request that a browser says comes from another site.
func crossSite(r *http.Request) error {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return forbidden("the browser says this request comes from another site (Sec-Fetch-Site: cross-site)")
	}
	origins := r.Header.Values("Origin")
	switch {
	case len(origins) == 0:
		return nil
	case len(origins) > 1:
		return forbidden("Origin is given more than once")
	}
	if !sameOrigin(origins[0], r.Host) {
		return forbidden(fmt.Sprintf("Origin %q is not this page's origin; save from the page itself", origins[0]))
	}
	return nil
}

// sameOrigin reports whether origin (scheme://host[:port]) names host, the Host the
// request was sent to. The scheme is not compared: behind Knative's ingress TLS ends
// before the UI, so the UI cannot know it; a default port counts as no port.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	return strings.EqualFold(withoutDefaultPort(u.Host, u.Scheme), withoutDefaultPort(host, u.Scheme))
}

func withoutDefaultPort(host, scheme string) string {
	if scheme == "http" {
		return strings.TrimSuffix(host, ":80")
	}
	return strings.TrimSuffix(host, ":443")
}

func forbidden(msg string) error {
	return fail.Errorf(fail.EFORBIDDEN, "cross-site request refused: %s", msg)
}

// requireJSON returns a 415 unless the request says its body is JSON.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return &fail.Error{Code: fail.EUNSUPPORTED, Field: "Content-Type",
			Message: "Content-Type is missing; send application/json"}
	}
	if !serve.IsJSON(ct) {
		return serve.UnsupportedType("Content-Type", ct)
	}
	return nil
}

// writeGuard runs both rules for a writing endpoint.
func writeGuard(r *http.Request) error {
	if err := crossSite(r); err != nil {
		return err
	}
	return requireJSON(r)
}
