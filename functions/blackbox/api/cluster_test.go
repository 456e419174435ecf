package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// TestClusterPagesMatchOneMaster stores the same records, one at a time, through the
// functions on one master and on a Redis Cluster of three masters (six partitions),
// and reads them back in pages of 7, plain, by type and by word: each page holds the
// same types and texts in the same order on both. Ids and seqs differ by design (a
// cluster's name their partition, and a seq is a partition's).
func TestClusterPagesMatchOneMaster(t *testing.T) {
	if testenv.OnCluster() {
		t.Skip("starts both backends itself")
	}
	one := &testenv.Backend{Pair: testenv.Redis(t)}
	cl := &testenv.Backend{Cluster: testenv.Cluster(t)}
	type site struct {
		name        string
		write, read string
		token       string
	}
	sites := []*site{
		{name: "one master", write: testfunc.WriteOn(t, one, nil).URL, read: testfunc.ReadOn(t, one, nil).URL},
		{name: "cluster", write: testfunc.WriteOn(t, cl, nil).URL, read: testfunc.ReadOn(t, cl, nil).URL},
	}
	types := []string{"bp", "cmt", "rvw"}
	for i := range 40 {
		body := fmt.Sprintf(`{"type":%q,"text":"record %d of %s"}`, types[i%3], i, []string{"alpha", "beta", "alpha beta"}[i%3])
		for _, s := range sites {
			resp, b := testenv.Do(t, http.MethodPost, s.write+"/records", testenv.Header("Content-Type", "application/json", "X-Consistency-Token", s.token), body)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("%s: create: %d %s", s.name, resp.StatusCode, b)
			}
			s.token = resp.Header.Get("X-Consistency-Token")
		}
	}
	for _, query := range []string{"limit=7", "type=cmt&limit=7", "q=alpha&limit=7", "q=alpha+beta&type=rvw&limit=7"} {
		var pages [2][]string
		for n, s := range sites {
			next := ""
			for range 20 {
				u := s.read + "/records?" + query + "&token=" + url.QueryEscape(s.token)
				if next != "" {
					u += "&cursor=" + url.QueryEscape(next)
				}
				resp, b := testenv.Do(t, http.MethodGet, u, nil, "")
				var p struct {
					Records []struct {
						Type, Text string
					} `json:"records"`
					NextCursor string `json:"nextCursor"`
				}
				if err := json.Unmarshal(b, &p); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: GET %s: %d %s", s.name, u, resp.StatusCode, b)
				}
				var page []string
				for _, r := range p.Records {
					page = append(page, r.Type+" "+r.Text)
				}
				pages[n] = append(pages[n], strings.Join(page, " | "))
				if next = p.NextCursor; next == "" {
					break
				}
			}
		}
		if !slices.Equal(pages[0], pages[1]) {
			t.Errorf("%s: pages differ\none master: %q\ncluster:    %q", query, pages[0], pages[1])
		}
	}
}

// TestClusterPartitionsOfTheStore: a function whose REDIS_PARTITIONS is not the
// store's, more or fewer, is not ready and refuses every request with a 503 that
// names the setting and the store's value, and stores nothing, whichever partitions
// earlier creates happened to write.
func TestClusterPartitionsOfTheStore(t *testing.T) {
	if testenv.OnCluster() {
		t.Skip("starts its own cluster")
	}
	cl := &testenv.Backend{Cluster: testenv.Cluster(t)}
	w := testfunc.WriteOn(t, cl, nil).URL
	create := func(base string) (int, string) {
		resp, b := testenv.Do(t, http.MethodPost, base+"/records", testenv.Header("Content-Type", "application/json"), `{"type":"bp","text":"partitions"}`)
		return resp.StatusCode, string(b)
	}
	// No record yet: the count the write function wrote into every partition at its
	// start is what the others must find, whichever partitions they read.
	want := fmt.Sprintf("set REDIS_PARTITIONS=%d", testenv.ClusterPartitions)
	for _, n := range []int{testenv.ClusterPartitions - 2, testenv.ClusterPartitions + 2} {
		wn := testfunc.WriteOn(t, cl, func(c *write.Config) { c.RedisPartitions = n }).URL
		rn := testfunc.ReadOn(t, cl, func(c *read.Config) { c.RedisPartitions = n }).URL
		for _, probe := range []struct{ name, method, url string }{
			{"write readiness", http.MethodGet, wn + "/health/readiness"},
			{"read readiness", http.MethodGet, rn + "/health/readiness"},
			{"page", http.MethodGet, rn + "/records"},
			{"record", http.MethodGet, rn + "/records/0_1-abcdefgh"},
		} {
			resp, b := testenv.Do(t, probe.method, probe.url, nil, "")
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), want) {
				t.Errorf("REDIS_PARTITIONS=%d, %s: got %d %s, want 503 saying %q", n, probe.name, resp.StatusCode, b, want)
			}
		}
		for range 10 {
			if status, body := create(wn); status != http.StatusServiceUnavailable || !strings.Contains(body, want) {
				t.Errorf("REDIS_PARTITIONS=%d, create: got %d %s, want 503 saying %q", n, status, body, want)
			}
		}
	}
	if status, body := create(w); status != http.StatusCreated {
		t.Fatalf("create with the store's partitions: %d %s", status, body)
	}
	if got := cl.Records(t); got != 1 {
		t.Errorf("the store holds %d records, want the 1 created with the store's partitions", got)
	}
}
