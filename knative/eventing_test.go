package knative

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// The eventing.knative.dev/v1 types are not in this module's dependencies; these
// mirror the fields of Broker and Trigger that exist in v1, so a strict decode
// still catches a misspelt or misplaced field.

const eventingV1 = "eventing.knative.dev/v1"

type kref struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
	Group      string `json:"group,omitempty"`
}

type destination struct {
	Ref      *kref   `json:"ref,omitempty"`
	URI      string  `json:"uri,omitempty"`
	CACerts  *string `json:"CACerts,omitempty"`
	Audience *string `json:"audience,omitempty"`
}

type deliverySpec struct {
	DeadLetterSink *destination `json:"deadLetterSink,omitempty"`
	Retry          *int32       `json:"retry,omitempty"`
	Timeout        *string      `json:"timeout,omitempty"`
	BackoffPolicy  *string      `json:"backoffPolicy,omitempty"`
	BackoffDelay   *string      `json:"backoffDelay,omitempty"`
	RetryAfterMax  *string      `json:"retryAfterMax,omitempty"`
}

type broker struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Config   *kref         `json:"config,omitempty"`
		Delivery *deliverySpec `json:"delivery,omitempty"`
	} `json:"spec"`
}

type trigger struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Broker string `json:"broker"`
		Filter *struct {
			Attributes map[string]string `json:"attributes,omitempty"`
		} `json:"filter,omitempty"`
		// The newer expression filters; these manifests use attribute filters only,
		// which the loop check below understands.
		Filters    []map[string]any `json:"filters,omitempty"`
		Subscriber destination      `json:"subscriber"`
		Delivery   *deliverySpec    `json:"delivery,omitempty"`
	} `json:"spec"`
}

// typeFilter is the event type a Trigger passes, or "" when it passes any type.
func (tr trigger) typeFilter() string {
	if tr.Spec.Filter == nil {
		return ""
	}
	return tr.Spec.Filter.Attributes["type"]
}

// matches reports whether an event of type typ, from any source, passes tr.
func (tr trigger) matches(typ string) bool {
	f := tr.typeFilter()
	return f == "" || f == typ
}

// The sources.knative.dev/v1 fields of SinkBinding and PingSource these manifests
// use, mirrored likewise.
const sourcesV1 = "sources.knative.dev/v1"

type sinkBinding struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Subject     kref        `json:"subject"`
		Sink        destination `json:"sink"`
		CEOverrides *struct {
			Extensions map[string]string `json:"extensions,omitempty"`
		} `json:"ceOverrides,omitempty"`
	} `json:"spec"`
}

type pingSource struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Schedule    string      `json:"schedule"`
		Timezone    string      `json:"timezone,omitempty"`
		ContentType string      `json:"contentType,omitempty"`
		Data        string      `json:"data,omitempty"`
		DataBase64  string      `json:"dataBase64,omitempty"`
		Sink        destination `json:"sink"`
	} `json:"spec"`
}

func sources(t *testing.T) ([]sinkBinding, []pingSource) {
	t.Helper()
	var bindings []sinkBinding
	var pings []pingSource
	for _, d := range allDocs(t) {
		if d.apiVersion != sourcesV1 || filepath.Dir(d.file) != "." {
			continue
		}
		var err error
		switch d.kind {
		case "SinkBinding":
			var b sinkBinding
			err = yaml.UnmarshalStrict(d.json, &b)
			bindings = append(bindings, b)
		case "PingSource":
			var p pingSource
			err = yaml.UnmarshalStrict(d.json, &p)
			pings = append(pings, p)
		default:
			err = fmt.Errorf("unexpected kind")
		}
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	return bindings, pings
}

// TestOutboxWiring: one SinkBinding gives cqrs-write the Broker as K_SINK (its
// outbox's sink), one PingSource wakes cqrs-write at most every 10 minutes with an
// event type it takes, and no Trigger sends what the outbox publishes back into a
// function (TestBrokerAndTriggers' loop check covers dev.cqrs.record.created).
func TestOutboxWiring(t *testing.T) {
	brokers, _ := eventing(t)
	bindings, pings := sources(t)
	if len(bindings) != 1 || len(pings) != 1 || len(brokers) != 1 {
		t.Fatalf("got %d SinkBindings, %d PingSources, %d Brokers; want one each", len(bindings), len(pings), len(brokers))
	}
	b, p, br := bindings[0], pings[0], brokers[0]
	ksvc := servingv1.SchemeGroupVersion.String()
	if s := b.Spec.Subject; s.APIVersion != ksvc || s.Kind != "Service" || s.Name != "cqrs-write" {
		t.Errorf("SinkBinding subject %+v, want the Knative Service cqrs-write", s)
	}
	if r := b.Spec.Sink.Ref; r == nil || r.APIVersion != eventingV1 || r.Kind != "Broker" || r.Name != br.Metadata.Name {
		t.Errorf("SinkBinding sink %+v, want the Broker %s", b.Spec.Sink, br.Metadata.Name)
	}
	if r := p.Spec.Sink.Ref; r == nil || r.APIVersion != ksvc || r.Kind != "Service" || r.Name != "cqrs-write" {
		t.Errorf("PingSource sink %+v, want the Knative Service cqrs-write", p.Spec.Sink)
	}
	every, err := cronEvery(p.Spec.Schedule)
	if err != nil || every < 10*time.Minute {
		t.Errorf("PingSource schedule %q (%v): every %s, want at most every 10 minutes", p.Spec.Schedule, err, every)
	}
	if p.Spec.ContentType != "" && p.Spec.ContentType != "application/json" {
		t.Errorf("PingSource contentType %q: cqrs-write takes JSON data or none", p.Spec.ContentType)
	}
	for _, m := range []metav1.ObjectMeta{b.Metadata, p.Metadata} {
		if m.Namespace != br.Metadata.Namespace {
			t.Errorf("%s is in namespace %q, want the Broker's %q", m.Name, m.Namespace, br.Metadata.Namespace)
		}
	}
}

// cronEvery is the period of a five-field schedule of the forms "M * * * *" (hourly)
// and "*/N * * * *" (every N minutes), the two these manifests may use.
func cronEvery(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) != 5 || f[1] != "*" || f[2] != "*" || f[3] != "*" || f[4] != "*" {
		return 0, fmt.Errorf("not of the form \"*/N * * * *\" or \"M * * * *\"")
	}
	if n, ok := strings.CutPrefix(f[0], "*/"); ok {
		m, err := strconv.Atoi(n)
		if err != nil || m < 1 || m > 59 {
			return 0, fmt.Errorf("minute step %q", n)
		}
		return time.Duration(m) * time.Minute, nil
	}
	if m, err := strconv.Atoi(f[0]); err != nil || m < 0 || m > 59 {
		return 0, fmt.Errorf("minute %q", f[0])
	}
	return time.Hour, nil
}

func eventing(t *testing.T) ([]broker, []trigger) {
	t.Helper()
	var brokers []broker
	var triggers []trigger
	for _, d := range allDocs(t) {
		// The overlays take the Broker and Triggers over unchanged; check them once.
		if d.apiVersion != eventingV1 || filepath.Dir(d.file) != "." {
			continue
		}
		var err error
		switch d.kind {
		case "Broker":
			var b broker
			err = yaml.UnmarshalStrict(d.json, &b)
			brokers = append(brokers, b)
		case "Trigger":
			var tr trigger
			err = yaml.UnmarshalStrict(d.json, &tr)
			triggers = append(triggers, tr)
		default:
			err = fmt.Errorf("unexpected kind")
		}
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	return brokers, triggers
}

// isoDuration matches the ISO 8601 durations Knative's delivery spec takes.
var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

func parseISODuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", s, err)
		}
		d += time.Duration(f * float64(unit))
	}
	return d, nil
}

// retryWindow is how long Knative keeps retrying with exponential backoff: the
// n-th retry waits delay * 2^n.
func retryWindow(ds *deliverySpec) (time.Duration, error) {
	if ds == nil || ds.Retry == nil || *ds.Retry < 1 {
		return 0, errors.New("delivery has no retries")
	}
	if ds.BackoffPolicy == nil || *ds.BackoffPolicy != "exponential" {
		return 0, errors.New("delivery.backoffPolicy is not exponential")
	}
	if ds.BackoffDelay == nil {
		return 0, errors.New("delivery.backoffDelay is not set")
	}
	delay, err := parseISODuration(*ds.BackoffDelay)
	if err != nil {
		return 0, err
	}
	if delay <= 0 {
		return 0, fmt.Errorf("delivery.backoffDelay %s is not positive", *ds.BackoffDelay)
	}
	var total time.Duration
	for n := range *ds.Retry {
		total += delay << n
	}
	return total, nil
}

// loopCheck fails when a reply of either function would pass a Trigger: the Broker
// would deliver the function's output back to a function, without end.
func loopCheck(triggers []trigger) error {
	var errs []error
	for _, tr := range triggers {
		for _, reply := range []string{record.EventCreated, record.EventResult} {
			if tr.matches(reply) {
				errs = append(errs, fmt.Errorf("trigger %s passes reply type %s (filter type %q)", tr.Metadata.Name, reply, tr.typeFilter()))
			}
		}
		if len(tr.Spec.Filters) > 0 {
			errs = append(errs, fmt.Errorf("trigger %s uses expression filters, which this check cannot prove loop-free", tr.Metadata.Name))
		}
	}
	return errors.Join(errs...)
}

func TestBrokerAndTriggers(t *testing.T) {
	brokers, triggers := eventing(t)
	if len(brokers) != 1 {
		t.Fatalf("got %d Brokers, want 1", len(brokers))
	}
	b := brokers[0]
	if _, err := retryWindow(b.Spec.Delivery); err != nil {
		t.Errorf("broker %s: %v", b.Metadata.Name, err)
	}

	svcs := services(t)["."]
	want := map[string]string{record.EventCreate: "cqrs-write", record.EventQuery: "cqrs-read"}
	seen := map[string]int{}
	for _, tr := range triggers {
		name := tr.Metadata.Name
		if tr.Spec.Broker != b.Metadata.Name || tr.Metadata.Namespace != b.Metadata.Namespace {
			t.Errorf("trigger %s: broker %s/%s, want %s/%s", name, tr.Metadata.Namespace, tr.Spec.Broker, b.Metadata.Namespace, b.Metadata.Name)
		}
		typ := tr.typeFilter()
		seen[typ]++
		svc, ok := want[typ]
		if !ok {
			t.Errorf("trigger %s: filter type %q, want one of %s, %s", name, typ, record.EventCreate, record.EventQuery)
			continue
		}
		ref := tr.Spec.Subscriber.Ref
		if ref == nil || ref.APIVersion != servingv1.SchemeGroupVersion.String() || ref.Kind != "Service" || ref.Name != svc {
			t.Errorf("trigger %s: subscriber %+v, want the Knative Service %s", name, ref, svc)
		} else if svcs[ref.Name] == nil {
			t.Errorf("trigger %s: subscriber Service %s is not in knative/", name, ref.Name)
		}
		window, err := retryWindow(tr.Spec.Delivery)
		if err != nil {
			t.Errorf("trigger %s: %v", name, err)
		}
		// A command that finds Redis down is answered 503 and retried; the retries
		// should outlast a master pod restart, or the command is lost.
		if typ == record.EventCreate && err == nil && window < 10*time.Second {
			t.Errorf("trigger %s: retries span %s, want at least 10s", name, window)
		}
	}
	for typ := range want {
		if seen[typ] != 1 {
			t.Errorf("got %d Triggers for %s, want 1", seen[typ], typ)
		}
	}
	if err := loopCheck(triggers); err != nil {
		t.Error(err)
	}
}

func TestLoopCheckRejectsReplyRoutes(t *testing.T) {
	_, triggers := eventing(t)
	if len(triggers) == 0 {
		t.Fatal("no triggers")
	}
	tests := []struct {
		name string
		edit func(tr *trigger)
	}{
		{"no filter", func(tr *trigger) { tr.Spec.Filter = nil }},
		{"source filter only", func(tr *trigger) { tr.Spec.Filter.Attributes = map[string]string{"source": "x"} }},
		{"created reply", func(tr *trigger) { tr.Spec.Filter.Attributes = map[string]string{"type": record.EventCreated} }},
		{"result reply", func(tr *trigger) { tr.Spec.Filter.Attributes = map[string]string{"type": record.EventResult} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := triggers[0]
			tt.edit(&bad)
			if err := loopCheck([]trigger{bad}); err == nil {
				t.Errorf("loopCheck accepted a trigger with %s", tt.name)
			}
		})
	}
}

func TestParseISODuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"PT0.5S", 500 * time.Millisecond, true},
		{"PT2S", 2 * time.Second, true},
		{"PT1M30S", 90 * time.Second, true},
		{"P1DT1H", 25 * time.Hour, true},
		{"0.5s", 0, false},
		{"PT", 0, false},
		{"P", 0, false},
	}
	for _, tt := range tests {
		got, err := parseISODuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseISODuration(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
