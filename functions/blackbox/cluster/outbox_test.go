//go:build e2e

package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The suite's subscriber inside the cluster: a Deployment of
// functions/blackbox/cluster/receiver (built by ko, as make deploy builds the
// functions) behind a Service, and a Trigger for dev.cqrs.record.created to it.
// Both live until the end of the suite, like the other Triggers of the suite
// (removeSinkTriggers), so that no subscriber leaves the channel while events flow.
const (
	receiverName  = "e2e-receiver"
	outboxTrigger = sinkTriggerPrefix + "outbox"
	// The project's PingSource, whose copy with a schedule of every minute wakes
	// cqrs-write in TestOutbox (the project's own fires every 10 minutes).
	projectPing = "cqrs-write-outbox-wake"
	testPing    = "e2e-outbox-wake"
)

const receiverManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
  labels:
    app.kubernetes.io/name: %[1]s
    app.kubernetes.io/part-of: cqrs-knative-e2e
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: %[1]s
  template:
    metadata:
      labels:
        app.kubernetes.io/name: %[1]s
        app.kubernetes.io/part-of: cqrs-knative-e2e
    spec:
      containers:
        - name: receiver
          image: ko://github.com/cqrs-knative/cqrs-knative/functions/blackbox/cluster/receiver
          ports:
            - containerPort: 8080
          readinessProbe:
            httpGet:
              path: /healthz
              port: 8080
            periodSeconds: 1
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 200m, memory: 64Mi}
          securityContext:
            runAsNonRoot: true
            runAsUser: 65532
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
            seccompProfile: {type: RuntimeDefault}
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: %[2]s
  labels:
    app.kubernetes.io/part-of: cqrs-knative-e2e
spec:
  selector:
    app.kubernetes.io/name: %[1]s
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: %[3]s
  namespace: %[2]s
spec:
  broker: default
  filter:
    attributes:
      type: dev.cqrs.record.created
  subscriber:
    ref:
      apiVersion: v1
      kind: Service
      name: %[1]s
`

// receivedEvent is one delivery the receiver got (its GET /events).
type receivedEvent struct {
	ID         string            `json:"id"`
	Source     string            `json:"source"`
	Type       string            `json:"type"`
	Subject    string            `json:"subject"`
	Time       string            `json:"time"`
	Extensions map[string]string `json:"extensions"`
	Data       json.RawMessage   `json:"data"`
	Received   time.Time         `json:"received"`
}

// receiverAt reads the receiver's deliveries at addr (host:port of its Service).
type receiverAt string

func (addr receiverAt) events(t *testing.T) []receivedEvent {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	var evs []receivedEvent
	eventually(t, "the receiver's GET /events", 30*time.Second, 500*time.Millisecond, func() bool {
		a, err := send(t, c, "GET", "http://"+string(addr)+"/events", nil, "")
		if err != nil || a.status != http.StatusOK {
			t.Logf("receiver: %v %v", a, err)
			return false
		}
		evs = nil
		return json.Unmarshal(a.body, &evs) == nil
	})
	return evs
}

// byID counts the deliveries of each record id among evs.
func byID(evs []receivedEvent) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		n[e.ID]++
	}
	return n
}

// startReceiver deploys the receiver and its Trigger (ko apply, as make deploy
// does) and returns where this machine reaches it.
func startReceiver(t *testing.T) receiverAt {
	t.Helper()
	f := filepath.Join(t.TempDir(), "receiver.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf(receiverManifest, receiverName, ns, outboxTrigger)), 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, 10*time.Minute, "ko", "apply", "--base-import-paths", "-f", f)
	must(t, 4*time.Minute, "kubectl", "rollout", "status", "--namespace", ns, "deployment/"+receiverName, "--timeout=3m")
	must(t, 2*time.Minute, "kubectl", "wait", "--namespace", ns, "--for=condition=Ready", "--timeout=90s", "trigger/"+outboxTrigger)
	return receiverAt(serviceAddr(t, ns, receiverName, 80))
}

// removeReceiver deletes what startReceiver made (the Trigger goes with the
// suite's other Triggers).
func removeReceiver() {
	_, _ = command(time.Minute, "kubectl", "delete", "--namespace", ns, "--ignore-not-found",
		"deployment/"+receiverName, "service/"+receiverName, "pingsource/"+testPing)
}

// sinkOfCqrsWrite checks the SinkBinding of knative/outbox.yaml: Ready, its sink
// the Broker, and K_SINK with that address in cqrs-write's template and in every
// pod of its latest revision. It returns the Broker's address.
func sinkOfCqrsWrite(t *testing.T) string {
	t.Helper()
	var broker struct {
		Status struct {
			Address struct {
				URL string `json:"url"`
			} `json:"address"`
		} `json:"status"`
	}
	kubectlJSON(t, &broker, "broker", "default")
	brokerURL := broker.Status.Address.URL
	if brokerURL == "" {
		t.Fatal("the Broker default has no address")
	}
	var sb struct {
		Status struct {
			SinkURI    string `json:"sinkUri"`
			Conditions []struct {
				Type, Status, Message string
			} `json:"conditions"`
		} `json:"status"`
	}
	kubectlJSON(t, &sb, "sinkbinding", "cqrs-write-outbox")
	ready := false
	for _, c := range sb.Status.Conditions {
		ready = ready || c.Type == "Ready" && c.Status == "True"
	}
	if !ready || sb.Status.SinkURI != brokerURL {
		t.Fatalf("SinkBinding cqrs-write-outbox: Ready %v, sinkUri %q; want Ready and the Broker's address %q (%+v)",
			ready, sb.Status.SinkURI, brokerURL, sb.Status.Conditions)
	}
	var ksvc struct {
		Spec struct {
			Template struct {
				Spec podSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	kubectlJSON(t, &ksvc, "ksvc", "cqrs-write")
	if got := ksvc.Spec.Template.Spec.env("K_SINK"); got != brokerURL {
		t.Errorf("K_SINK in cqrs-write's template: got %q, want the Broker's address %q", got, brokerURL)
	}
	var pods struct {
		Items []struct {
			Metadata struct{ Name string } `json:"metadata"`
			Spec     podSpec               `json:"spec"`
		} `json:"items"`
	}
	kubectlJSON(t, &pods, "pods", "-l", "serving.knative.dev/revision="+revisionOf(t, "cqrs-write"))
	for _, p := range pods.Items {
		if got := p.Spec.env("K_SINK"); got != brokerURL {
			t.Errorf("K_SINK in pod %s: got %q, want %q", p.Metadata.Name, got, brokerURL)
		}
	}
	t.Logf("SinkBinding cqrs-write-outbox Ready; K_SINK=%s in cqrs-write's template and its %d pod(s)", brokerURL, len(pods.Items))
	return brokerURL
}

type podSpec struct {
	Containers []struct {
		Name string `json:"name"`
		Env  []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"env"`
	} `json:"containers"`
}

// env is the value of the variable name in the container cqrs-write (or the first
// container, in a template without names).
func (s podSpec) env(name string) string {
	for i, c := range s.Containers {
		if c.Name != "cqrs-write" && !(c.Name == "" && i == 0) {
			continue
		}
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value
			}
		}
	}
	return ""
}

// writeMetric reads one sample of cqrs-write's /metrics through its route: the
// metric name with its labels as written ({...} or nothing); ok is false if the
// line is not there. The request is answered by a running pod, or starts one.
func writeMetric(t *testing.T, series string) (v float64, ok bool) {
	t.Helper()
	a, err := send(t, routeClient, "GET", urls["cqrs-write"]+"/metrics", nil, "")
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("cqrs-write /metrics: %v %v", a, err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(a.body)))
	for sc.Scan() {
		name, value, found := strings.Cut(sc.Text(), " ")
		if found && name == series {
			f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// outboxEmpty waits until cqrs-write reports no outbox entry pending: every event
// taken was answered by the Broker, so every delivery has reached the receiver.
func outboxEmpty(t *testing.T) {
	t.Helper()
	eventually(t, "cqrs_outbox_pending 0 on cqrs-write's /metrics", 60*time.Second, 500*time.Millisecond, func() bool {
		v, ok := writeMetric(t, "cqrs_outbox_pending")
		return ok && v == 0
	})
}

// checkOnce checks that every record reached the receiver exactly once, as the
// outbox's dev.cqrs.record.created event (the record as data, the id the record
// id, the consistency token as an extension), in seq order.
func checkOnce(t *testing.T, evs []receivedEvent, recs []record) {
	t.Helper()
	counts := byID(evs)
	pos := map[string]int{}
	for i, e := range evs {
		pos[e.ID] = i
	}
	for i, r := range recs {
		if counts[r.ID] != 1 {
			t.Errorf("record %s (seq %d) reached the receiver %d times, want once", r.ID, r.Seq, counts[r.ID])
			continue
		}
		e := evs[pos[r.ID]]
		if e.Type != "dev.cqrs.record.created" || e.Subject != r.ID || e.Source != "cqrs-write" {
			t.Errorf("event for %s: type %q, subject %q, source %q; want dev.cqrs.record.created, %s, cqrs-write", r.ID, e.Type, e.Subject, e.Source, r.ID)
		}
		if e.Extensions["consistencytoken"] == "" {
			t.Errorf("event for %s carries no consistencytoken: %v", r.ID, e.Extensions)
		}
		if _, reply := e.Extensions["replayed"]; reply {
			t.Errorf("event for %s is a reply (replayed=%s), not the outbox's: the record came over HTTP", r.ID, e.Extensions["replayed"])
		}
		var got record
		if err := json.Unmarshal(e.Data, &got); err != nil || got != r {
			t.Errorf("event for %s: data %s (%v), want the record %+v", r.ID, e.Data, err, r)
		}
		if i > 0 && counts[recs[i-1].ID] == 1 && pos[recs[i-1].ID] > pos[r.ID] {
			t.Errorf("record seq %d reached the receiver before seq %d", r.Seq, recs[i-1].Seq)
		}
	}
}

// TestOutbox: every record stored, here over HTTP, is published by cqrs-write's
// outbox to the Broker (K_SINK, from the SinkBinding), and a Trigger of the
// suite's own delivers it once to a subscriber inside the cluster; and records
// stored while the Broker was down, left pending by an instance that then scaled
// to zero, go out when a PingSource wakes cqrs-write.
func TestOutbox(t *testing.T) {
	sinkOfCqrsWrite(t)
	rc := startReceiver(t)

	t.Run("each HTTP-created record once", func(t *testing.T) {
		word := nonce()
		var recs []record
		start := time.Now()
		for i := range 5 {
			recs = append(recs, create(t, "bp", fmt.Sprintf("outbox %s %d", word, i)))
		}
		var evs []receivedEvent
		eventually(t, "every record at the receiver", 60*time.Second, 200*time.Millisecond, func() bool {
			evs = rc.events(t)
			counts := byID(evs)
			for _, r := range recs {
				if counts[r.ID] == 0 {
					return false
				}
			}
			return true
		})
		took := time.Since(start)
		outboxEmpty(t)
		checkOnce(t, rc.events(t), recs)
		fmt.Printf("e2e measured: outbox: 5 records created over HTTP at the receiver after %s, each once\n", took.Round(time.Millisecond))
	})

	t.Run("woken from zero by a PingSource", func(t *testing.T) {
		if !local {
			t.Skip("takes the Broker's ingress down, which serves every namespace: only on the cluster make e2e builds")
		}
		rev := revisionOf(t, "cqrs-write")
		brokerIngress(t, 0)
		t.Cleanup(func() { brokerIngress(t, 1) })

		word := nonce()
		var recs []record
		for i := range 3 {
			recs = append(recs, create(t, "cmt", fmt.Sprintf("pending %s %d", word, i)))
		}
		eventually(t, "the relay waiting for the Broker with 3 entries pending", 30*time.Second, 500*time.Millisecond, func() bool {
			p, _ := writeMetric(t, "cqrs_outbox_pending")
			f, _ := writeMetric(t, `cqrs_outbox_send_failures_total{reason="unavailable"}`)
			return p >= 3 && f > 0
		})
		z := waitForZero(t, rev, time.Now())
		t.Logf("cqrs-write at 0 pods after %s, with its outbox pending", z.toNoPods.Round(time.Second))
		brokerIngress(t, 1)
		back := time.Now()
		if n := pods(t, rev); n == 0 {
			if got := byID(rc.events(t)); got[recs[0].ID]+got[recs[1].ID]+got[recs[2].ID] != 0 {
				t.Fatalf("records stored while the Broker was down reached the receiver with cqrs-write at zero")
			}
		} else {
			// The project's own PingSource (every 10 minutes) came first.
			t.Logf("cqrs-write has %d pod(s) again when the Broker is back", n)
		}

		// A copy of the project's PingSource, firing every minute.
		var ping struct {
			Spec map[string]any `json:"spec"`
		}
		kubectlJSON(t, &ping, "pingsource", projectPing)
		ping.Spec["schedule"] = "* * * * *"
		obj, _ := json.Marshal(map[string]any{
			"apiVersion": "sources.knative.dev/v1", "kind": "PingSource",
			"metadata": map[string]any{"name": testPing, "namespace": ns}, "spec": ping.Spec,
		})
		f := filepath.Join(t.TempDir(), "ping.json")
		if err := os.WriteFile(f, obj, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = command(time.Minute, "kubectl", "delete", "--namespace", ns, "--ignore-not-found", "pingsource/"+testPing)
		})
		must(t, time.Minute, "kubectl", "apply", "-f", f)
		must(t, 2*time.Minute, "kubectl", "wait", "--namespace", ns, "--for=condition=Ready", "--timeout=90s", "pingsource/"+testPing)
		// Its first ping is due at the next full minute.
		due := time.Now().Truncate(time.Minute).Add(time.Minute)

		var last time.Time
		eventually(t, "the pending records at the receiver", 3*time.Minute, time.Second, func() bool {
			evs := rc.events(t)
			counts := byID(evs)
			for _, e := range evs {
				if e.ID == recs[2].ID {
					last = e.Received
				}
			}
			return counts[recs[0].ID] > 0 && counts[recs[1].ID] > 0 && counts[recs[2].ID] > 0
		})
		drained := time.Since(back)
		must(t, time.Minute, "kubectl", "delete", "--namespace", ns, "pingsource/"+testPing)
		if woken, _ := writeMetric(t, `cqrs_events_total{outcome="woken",type="dev.knative.sources.ping"}`); woken < 1 {
			t.Errorf("the cqrs-write pod that drained the outbox counted %v ping events, want at least 1", woken)
		}
		outboxEmpty(t)
		checkOnce(t, rc.events(t), recs)
		fmt.Printf("e2e measured: outbox: 3 records stored while the Broker was down, cqrs-write at zero after %s; Broker back, then at the receiver %s later (PingSource every minute; the last one %s after the ping due at %s), each once\n",
			z.toNoPods.Round(time.Second), drained.Round(time.Second), last.Sub(due).Round(time.Millisecond), due.Format("15:04:05"))
	})
}

// brokerIngress scales the Broker's ingress (the MT channel-based Broker's
// mt-broker-ingress in knative-eventing) to n replicas and waits until its
// Service has n ready endpoints: at 0, senders to the Broker get their
// connections refused, which is how a Broker that is down looks to them.
func brokerIngress(t *testing.T, n int) {
	t.Helper()
	must(t, time.Minute, "kubectl", "scale", "--namespace", "knative-eventing", "deployment/mt-broker-ingress", fmt.Sprintf("--replicas=%d", n))
	eventually(t, fmt.Sprintf("the Broker's ingress at %d ready endpoint(s)", n), 3*time.Minute, 500*time.Millisecond, func() bool {
		out, err := command(time.Minute, "kubectl", "get", "endpoints", "broker-ingress", "--namespace", "knative-eventing",
			"-o", "jsonpath={.subsets[*].addresses[*].ip}")
		return err == nil && len(strings.Fields(out)) == n
	})
}
