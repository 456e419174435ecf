package faults_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestDNSRebindingWritesNothing: a page of another name that resolves to the UI of
// a developer's stack (Host and Origin both rebind.evil.example:<port>, as after
// DNS rebinding) is refused by the built UI, 403 on every route, and stores
// nothing; the same request by the UI's own name stores its record.
func TestDNSRebindingWritesNothing(t *testing.T) {
	st := testenv.StartStack(t, testenv.StackOptions{})
	addr := strings.TrimPrefix(st.Page.URL(), "http://")
	post := func(host, path, body string) int {
		req := "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nOrigin: http://" + host + "\r\nConnection: close\r\n" +
			"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		resp, b, err := send(addr, []byte(req))
		if err != nil {
			t.Fatalf("POST %s as %s: %v", path, host, err)
		}
		if resp.StatusCode >= 300 && !strings.Contains(string(b), `"code":`) {
			t.Errorf("POST %s as %s: %d %s, want a JSON error", path, host, resp.StatusCode, b)
		}
		return resp.StatusCode
	}
	evil := "rebind.evil.example:" + strconv.Itoa(st.Page.Port)
	for _, tt := range []struct{ path, body string }{
		{"/api/records", `{"type":"bp","text":"rebound"}`},
		{"/add", `{"d_type":"bp","data":"rebound"}`},
	} {
		if got := post(evil, tt.path, tt.body); got != http.StatusForbidden {
			t.Errorf("POST %s as %s: %d, want 403", tt.path, evil, got)
		}
	}
	if got := post("127.0.0.1:"+strconv.Itoa(st.Page.Port), "/api/records", `{"type":"bp","text":"own"}`); got != http.StatusCreated {
		t.Fatalf("POST /api/records by the UI's own name: %d, want 201", got)
	}
	if o, p := list(newClient(1), st.Read.URL(), "minSeq=1"); o.status != http.StatusOK || len(p.Records) != 1 || p.Records[0].Text != "own" {
		t.Errorf("the store holds %+v (%v), want only the record of the UI's own request", p.Records, o)
	}
}
