package ui

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// The UI's writing endpoints (POST /api/records and POST /add) are protected from
// cross-site request forgery by two rules, checked in this order:
//
//  1. Origin: net/http's CrossOriginProtection refuses a POST that the browser says
//     (Sec-Fetch-Site) comes from another origin or, from a browser that does not
//     say, whose Origin header names another host than the request's Host. A
//     request with neither header comes from a program such as curl, which no
//     other site can steer, and passes.
//  2. Content type: the body must be JSON (application/json or a +json type). A page
//     of another site can send only form, multipart or text/plain bodies without a
//     CORS preflight, and the UI answers no preflight, so it cannot send JSON here.
//
// Either rule alone stops a cross-site form; together they also cover old browsers
// that send no Origin and clients that send no Sec-Fetch-Site. Neither stops DNS
// rebinding, where the attacker's name resolves to the UI and Host and Origin agree:
// the Host allow-list does (allowedHost).

// writeGuard runs both rules for a writing endpoint.
func (s *UI) writeGuard(r *http.Request) error {
	if err := s.crossOrigin.Check(r); err != nil {
		return fail.Errorf(fail.EFORBIDDEN, "cross-site request refused: %v", err)
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return &fail.Error{Code: fail.EUNSUPPORTED, Field: "Content-Type", Message: "Content-Type is missing; send application/json"}
	}
	if !serve.IsJSON(ct) {
		return serve.UnsupportedType("Content-Type", ct)
	}
	return nil
}

// allowedHost reports whether the request's Host is one the UI serves: the host part
// (any port) is in UI_ALLOWED_HOSTS, or "*" is. A page of another name that resolves
// to the UI (DNS rebinding) is refused before any route, so it can neither write
// nor read through the proxy.
func (s *UI) allowedHost(r *http.Request) error {
	if slices.Contains(s.hosts, "*") {
		return nil
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.Trim(host, "[]")
	}
	if slices.Contains(s.hosts, strings.ToLower(host)) {
		return nil
	}
	return fail.Errorf(fail.EFORBIDDEN, "host %q is not served here; the UI answers to %s (UI_ALLOWED_HOSTS)", r.Host, strings.Join(s.hosts, ", "))
}
