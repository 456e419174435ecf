//go:build e2e

// Package cluster holds the end-to-end tests on a real Knative cluster: the
// project deployed the way a user deploys it (make deploy: ko apply -f knative/),
// then used the way a user uses it: kn, curl through the routes, the page in a
// browser, events through the Broker, scale to zero and back, a Redis master
// restart.
//
// Run them with `make e2e`, which picks the cluster (the current kube context if
// it has Knative Serving and Eventing, otherwise a single-node cluster brought up
// on this machine and torn down afterwards) and sets the environment:
//
//	CQRS_E2E_INGRESS        host:port of the Knative ingress; requests to a
//	                        route's URL are sent there with the route's Host
//	                        (empty: the URL's host is dialled as it resolves)
//	CQRS_E2E_LOCAL_CLUSTER  1 on the cluster of knative/cluster: Services'
//	                        ClusterIPs are reachable from this machine, and the
//	                        node address receives the test's event sink
//	CQRS_E2E_HELM           what make deploy runs as helm (the local cluster's
//	                        stand-in for Bitnami's chart)
//	CQRS_E2E_DEPLOY=0       skip make deploy (the project is deployed already)
//	CQRS_E2E_SINK_HOST      address of this machine as the cluster's pods reach
//	                        it, for the Broker reply tests on another cluster
//	CQRS_E2E_CURL_IMAGE     image for the README's `kubectl run ... curl` lines
//	CQRS_E2E_NAMESPACE      the namespace to deploy into and test in (default:
//	                        default); make deploy gets NAMESPACE=, and every
//	                        command the suite runs, the documentation's included,
//	                        gets a kubeconfig whose context has that namespace,
//	                        as docs/deploy.md tells a user to set it
//
// Every file is behind the e2e build tag: go test ./... never builds them.
package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// ns is the namespace the project is deployed into and tested in.
var ns = cmp.Or(os.Getenv("CQRS_E2E_NAMESPACE"), "default")

var (
	repoRoot string
	ingress  = os.Getenv("CQRS_E2E_INGRESS")
	local    = os.Getenv("CQRS_E2E_LOCAL_CLUSTER") == "1"
	// urls of the three Services, from kn service describe -o url.
	urls = map[string]string{}
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
	cleanup, err := useNamespace()
	if err == nil {
		err = setup()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		cleanup()
		os.Exit(1)
	}
	code := m.Run()
	removeSinkTriggers()
	removeReceiver()
	cleanup()
	os.Exit(code)
}

// useNamespace points every command of the suite (kubectl, kn, the
// documentation's commands) at ns when it is not default, through a copy of the
// kubeconfig whose current context has that namespace: what a user does with
// `kubectl config set-context --current --namespace=...`, without changing the
// user's own file. The cleanup removes the copy.
func useNamespace() (cleanup func(), err error) {
	cleanup = func() {}
	if ns == "default" {
		return cleanup, nil
	}
	cfg, err := exec.Command("kubectl", "config", "view", "--raw").Output()
	if err != nil {
		return cleanup, fmt.Errorf("kubectl config view --raw: %w", err)
	}
	f, err := os.CreateTemp("", "cqrs-e2e-kubeconfig-")
	if err != nil {
		return cleanup, err
	}
	cleanup = func() { os.Remove(f.Name()) }
	if _, err := f.Write(cfg); err != nil {
		return cleanup, err
	}
	if err := f.Close(); err != nil {
		return cleanup, err
	}
	if out, err := exec.Command("kubectl", "--kubeconfig", f.Name(), "config", "set-context", "--current", "--namespace", ns).CombinedOutput(); err != nil {
		return cleanup, fmt.Errorf("kubectl config set-context --current --namespace %s: %v\n%s", ns, err, out)
	}
	fmt.Printf("e2e: namespace %s (KUBECONFIG with that namespace for every command)\n", ns)
	return cleanup, os.Setenv("KUBECONFIG", f.Name())
}

// suiteSink receives the functions' reply events through Triggers of the suite's
// own (nil where this machine cannot be reached from the cluster's pods).
var suiteSink *sink

// setup deploys the project with make deploy, as a user would, and waits for
// the Services, the Broker and the Triggers.
func setup() error {
	for _, tool := range []string{"kubectl", "kn", "ko", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not on the PATH", tool)
		}
	}
	if os.Getenv("CQRS_E2E_DEPLOY") != "0" {
		args := deployArgs()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "make", args...)
		cmd.Dir = repoRoot
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		fmt.Printf("e2e: make %s\n", strings.Join(args, " "))
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("make deploy: %w", err)
		}
		fmt.Printf("e2e: make deploy took %s\n", time.Since(start).Round(time.Second))
	}
	if out, err := command(5*time.Minute, "kubectl", "wait", "--namespace", ns, "--for=condition=Ready", "--timeout=4m",
		"ksvc/cqrs-write", "ksvc/cqrs-read", "ksvc/cqrs-ui",
		"broker/default", "trigger/cqrs-record-create", "trigger/cqrs-records-query"); err != nil {
		return fmt.Errorf("waiting for Services, Broker and Triggers: %v\n%s", err, out)
	}
	if err := waitSinkBound(); err != nil {
		return err
	}
	for _, s := range []string{"cqrs-write", "cqrs-read", "cqrs-ui"} {
		out, err := command(time.Minute, "kn", "service", "describe", s, "--namespace", ns, "-o", "url")
		if err != nil {
			return fmt.Errorf("kn service describe %s -o url: %v\n%s", s, err, out)
		}
		urls[s] = strings.TrimSpace(out)
	}
	fmt.Printf("e2e: routes %v (ingress %q)\n", urls, ingress)
	removeSinkTriggers()
	removeReceiver()
	s, err := startSink()
	if err != nil {
		return err
	}
	if s != nil {
		if err := subscribeSink(s, "dev.cqrs.record.created", "dev.cqrs.records.result"); err != nil {
			return err
		}
		suiteSink = s
	}
	return nil
}

// waitSinkBound waits until cqrs-write runs with the Broker as K_SINK. The
// SinkBinding of knative/outbox.yaml adds K_SINK to cqrs-write's template once the
// Broker has an address, so a first make deploy makes a revision without it and,
// moments later, one with it; the tests start once that one is ready.
func waitSinkBound() error {
	if out, err := command(4*time.Minute, "kubectl", "wait", "--namespace", ns, "--for=condition=Ready", "--timeout=3m",
		"sinkbinding/cqrs-write-outbox"); err != nil {
		return fmt.Errorf("waiting for the SinkBinding cqrs-write-outbox: %v\n%s", err, out)
	}
	var last string
	for start := time.Now(); time.Since(start) < 3*time.Minute; time.Sleep(time.Second) {
		// The template with K_SINK, seen by Serving (the generations agree), and its
		// revision the ready one.
		out, err := command(time.Minute, "kubectl", "get", "ksvc", "cqrs-write", "--namespace", ns, "-o",
			`jsonpath={.metadata.generation} {.status.observedGeneration} {.status.latestCreatedRevisionName} {.status.latestReadyRevisionName} {.spec.template.spec.containers[0].env[?(@.name=="K_SINK")].value}`)
		last = strings.TrimSpace(out)
		if f := strings.Fields(last); err == nil && len(f) == 5 && f[0] == f[1] && f[2] == f[3] {
			fmt.Printf("e2e: cqrs-write %s ready with K_SINK=%s\n", f[3], f[4])
			return nil
		}
	}
	return fmt.Errorf("cqrs-write: no ready revision with K_SINK within 3m (generation, observed, latest created, latest ready, K_SINK: %q)", last)
}

// command runs a program with a deadline and returns its combined output.
func command(timeout time.Duration, name string, args ...string) (string, error) {
	return commandIn(repoRoot, nil, timeout, name, args...)
}

func commandIn(dir string, env []string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// must runs a command the test needs to succeed and logs it as typed.
func must(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	t.Logf("$ %s %s", name, strings.Join(args, " "))
	out, err := command(timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// deployArgs are make's arguments for `make deploy` with vars, and the local
// cluster's helm stand-in when there is one (CQRS_E2E_HELM).
func deployArgs(vars ...string) []string {
	args := append([]string{"deploy", "NAMESPACE=" + ns}, vars...)
	if h := os.Getenv("CQRS_E2E_HELM"); h != "" {
		args = append(args, "HELM="+h)
	}
	return args
}

// serviceURL is the URL kn reports for the Service now ("" when kn fails).
func serviceURL(svc string) string {
	out, _ := command(time.Minute, "kn", "service", "describe", svc, "--namespace", ns, "-o", "url")
	return strings.TrimSpace(out)
}

// routeGone waits until the public route of svc no longer serves it (404 from the
// ingress, once Traefik has the change). Without a local ingress there is nothing
// this suite can ask.
func routeGone(t *testing.T, svc string) {
	t.Helper()
	if ingress == "" {
		return
	}
	eventually(t, "the public route of "+svc+" to stop answering", 60*time.Second, 300*time.Millisecond, func() bool {
		a, err := send(t, routeClient, "GET", urls[svc]+"/records?limit=1", nil, "")
		return err == nil && a.status == http.StatusNotFound
	})
}

// routeClient sends requests for a route's URL to the ingress, keeping the URL's
// host as the Host header: what DNS pointing the route's domain at the ingress
// would do.
var routeClient = &http.Client{
	Timeout: 90 * time.Second,
	Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if ingress != "" {
				addr = ingress
			}
			return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 4,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s", a.status, strings.TrimSpace(string(a.body)))
}

// send makes one request and reads the whole answer.
func send(t *testing.T, c *http.Client, method, u string, h http.Header, body string) (answer, error) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	res, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}, err
}

type record struct {
	ID        string `json:"id"`
	Seq       int64  `json:"seq"`
	Type      string `json:"type"`
	Text      string `json:"text"`
	CreatedAt string `json:"createdAt"`
}

type page struct {
	Records    []record `json:"records"`
	NextCursor string   `json:"nextCursor"`
}

// create stores a record through cqrs-write's route and returns it.
func create(t *testing.T, typ, text string) record {
	t.Helper()
	a, err := send(t, routeClient, "POST", urls["cqrs-write"]+"/records", testenv.Header("Content-Type", "application/json"),
		fmt.Sprintf(`{"type":%q,"text":%q}`, typ, text))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if a.status != http.StatusCreated {
		t.Fatalf("create: got %s, want 201", a)
	}
	var r record
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("create: %v in %s", err, a.body)
	}
	return r
}

// query reads a page through cqrs-read's route.
func query(t *testing.T, params url.Values) (page, answer) {
	t.Helper()
	return readPage(t, urls["cqrs-read"], params)
}

// routeServes waits until the Service's public route answers (Traefik programs a
// route a moment after Knative reports its URL).
func routeServes(t *testing.T, svc string) {
	t.Helper()
	eventually(t, svc+"'s public route answering", 90*time.Second, 300*time.Millisecond, func() bool {
		a, err := send(t, routeClient, "GET", urls[svc]+"/health/readiness", nil, "")
		return err == nil && a.status == http.StatusOK
	})
}

// eventually polls cond every interval until it is true or the time is up.
func eventually(t *testing.T, what string, within, interval time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(interval)
	}
}

func nonce() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "e2e" + hex.EncodeToString(b[:])
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// kubectlJSON runs kubectl get ... -o json and decodes the answer.
func kubectlJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := command(time.Minute, "kubectl", append(append([]string{"get", "--namespace", ns}, args...), "-o", "json")...)
	if err != nil {
		t.Fatalf("kubectl get %v: %v\n%s", args, err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("kubectl get %v: %v", args, err)
	}
}

// serviceAddr is host:port of a cluster Service as this machine reaches it: its
// ClusterIP on the local cluster, or a kubectl port-forward elsewhere.
func serviceAddr(t *testing.T, namespace, name string, port int) string {
	t.Helper()
	if local {
		out, err := command(time.Minute, "kubectl", "get", "service", name, "--namespace", namespace, "-o", "jsonpath={.spec.clusterIP}")
		if err != nil || net.ParseIP(strings.TrimSpace(out)) == nil {
			t.Fatalf("ClusterIP of %s/%s: %v %s", namespace, name, err, out)
		}
		return net.JoinHostPort(strings.TrimSpace(out), fmt.Sprint(port))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "kubectl", "port-forward", "--namespace", namespace, "service/"+name, fmt.Sprintf(":%d", port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	buf := make([]byte, 256)
	n, _ := io.ReadAtLeast(stdout, buf, 20)
	// "Forwarding from 127.0.0.1:PORT -> 80"
	var p int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(buf[:n])), "Forwarding from 127.0.0.1:%d", &p); err != nil {
		t.Fatalf("kubectl port-forward said %q", buf[:n])
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// hostOf is the host of a URL.
func hostOf(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p.Host
}
