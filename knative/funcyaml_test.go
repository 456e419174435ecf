package knative

import (
	"bytes"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// funcSchemaPath is knative/func's JSON schema for func.yaml, vendored with its
// origin in testdata/README.md.
const funcSchemaPath = "testdata/func_yaml-schema.json"

// funcSchema compiles the vendored func.yaml schema.
func funcSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	file := funcSchemaPath
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("func.yaml schema: %v", err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("func_yaml-schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("func_yaml-schema.json")
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return sch
}

// validateFuncYAML checks a func.yaml document against the schema.
func validateFuncYAML(sch *jsonschema.Schema, src []byte) error {
	j, err := yaml.YAMLToJSON(src)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// funcFile is the part of func.yaml this project relies on.
type funcFile struct {
	Name    string `json:"name"`
	Runtime string `json:"runtime"`
	Invoke  string `json:"invoke"`
	Run     struct {
		Envs []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"envs"`
	} `json:"run"`
	Deploy struct {
		Namespace       string `json:"namespace"`
		HealthEndpoints struct {
			Liveness  string `json:"liveness"`
			Readiness string `json:"readiness"`
		} `json:"healthEndpoints"`
		Options struct {
			Scale struct {
				Min *int `json:"min"`
				Max *int `json:"max"`
			} `json:"scale"`
			Resources struct {
				Limits struct {
					Concurrency *int `json:"concurrency"`
				} `json:"limits"`
			} `json:"resources"`
		} `json:"options"`
		Subscriptions []struct {
			Source  string            `json:"source"`
			Filters map[string]string `json:"filters"`
		} `json:"subscriptions"`
	} `json:"deploy"`
}

func TestFuncYAMLMatchesSchema(t *testing.T) {
	sch := funcSchema(t)
	src, err := os.ReadFile("../func.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := validateFuncYAML(sch, src); err != nil {
		t.Errorf("func.yaml does not validate: %v", err)
	}

	// The schema must be able to say no, or the check above proves nothing.
	broken := []struct{ name, from, to string }{
		{"builder outside the enum", "builder: pack", "builder: ko"},
		{"unknown top-level field", "runtime: go", "runtime: go\nlanguage: go"},
		{"missing created", "created:", "createdAt:"},
		{"negative max scale", "max: 10", "max: -1"},
	}
	for _, b := range broken {
		if !bytes.Contains(src, []byte(b.from)) {
			t.Errorf("%s: func.yaml has no %q to break", b.name, b.from)
			continue
		}
		bad := bytes.Replace(src, []byte(b.from), []byte(b.to), 1)
		if err := validateFuncYAML(sch, bad); err == nil {
			t.Errorf("%s: schema accepted the broken func.yaml", b.name)
		}
	}
}

// TestFuncYAMLDescribesWriteFunction keeps func.yaml and knative/cqrs-write.yaml in
// step: func deploys the same function the manifests do, with the same settings.
func TestFuncYAMLDescribesWriteFunction(t *testing.T) {
	src, err := os.ReadFile("../func.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f funcFile
	if err := yaml.Unmarshal(src, &f); err != nil {
		t.Fatalf("func.yaml: %v", err)
	}
	if f.Name != "cqrs-write" || f.Runtime != "go" {
		t.Errorf("name, runtime = %q, %q; want cqrs-write, go", f.Name, f.Runtime)
	}
	if f.Invoke != "http" {
		t.Errorf("invoke = %q, want http: func picks its scaffolding by it, and Handle(w, r) is the HTTP signature (events arrive on POST / all the same)", f.Invoke)
	}

	svc := services(t)["."]["cqrs-write"]
	if svc == nil {
		t.Fatal("knative/cqrs-write.yaml has no Service cqrs-write")
	}
	// make deploy NAMESPACE=... puts the Services in any namespace; func.yaml names
	// none, so func deploys into the one its context (or --namespace) says.
	if f.Deploy.Namespace != "" {
		t.Errorf("deploy.namespace = %q, want it unset so that func follows the namespace the project is deployed into", f.Deploy.Namespace)
	}
	if f.Deploy.HealthEndpoints.Liveness != "/health/liveness" || f.Deploy.HealthEndpoints.Readiness != "/health/readiness" {
		t.Errorf("healthEndpoints = %+v, want the runtime's /health/liveness and /health/readiness", f.Deploy.HealthEndpoints)
	}

	tags := envTags([]reflect.Type{reflect.TypeFor[write.Config](), reflect.TypeFor[serve.Config]()})
	manifest := env(svc)
	for _, e := range f.Run.Envs {
		if e.Name == "DRAIN_TIMEOUT" {
			t.Errorf("env DRAIN_TIMEOUT in func.yaml: func builds run on knative.dev/func-go, which drains for a fixed 30s; the setting could only repeat that (docs/func.md)")
			continue
		}
		if !tags[e.Name] {
			t.Errorf("env %s is not read by the write function", e.Name)
			continue
		}
		m, ok := manifest[e.Name]
		switch {
		case !ok:
			t.Errorf("env %s is set in func.yaml but not in knative/cqrs-write.yaml", e.Name)
		case m.ValueFrom != nil && m.ValueFrom.SecretKeyRef != nil:
			ref := m.ValueFrom.SecretKeyRef
			if want := "{{ secret:" + ref.Name + ":" + ref.Key + " }}"; e.Value != want {
				t.Errorf("env %s = %q, want %q (the manifest's secret)", e.Name, e.Value, want)
			}
		case e.Value != m.Value:
			t.Errorf("env %s = %q, want %q as in knative/cqrs-write.yaml", e.Name, e.Value, m.Value)
		}
	}

	scale := f.Deploy.Options.Scale
	maxScale := svc.Spec.Template.Annotations["autoscaling.knative.dev/max-scale"]
	if scale.Min == nil || *scale.Min != 0 || scale.Max == nil || strconv.Itoa(*scale.Max) != maxScale {
		t.Errorf("scale = min %v max %v, want 0 and %s as in the manifest", deref(scale.Min), deref(scale.Max), maxScale)
	}
	if cc := f.Deploy.Options.Resources.Limits.Concurrency; cc == nil || int64(*cc) != *svc.Spec.Template.Spec.ContainerConcurrency {
		t.Errorf("limits.concurrency = %v, want %d as in the manifest", deref(cc), *svc.Spec.Template.Spec.ContainerConcurrency)
	}

	brokers, _ := eventing(t)
	if len(f.Deploy.Subscriptions) != 1 {
		t.Fatalf("got %d subscriptions, want 1", len(f.Deploy.Subscriptions))
	}
	sub := f.Deploy.Subscriptions[0]
	if len(brokers) != 1 || sub.Source != brokers[0].Metadata.Name {
		t.Errorf("subscription source = %q, want the Broker in knative/", sub.Source)
	}
	if got := sub.Filters["type"]; got != record.EventCreate || len(sub.Filters) != 1 {
		t.Errorf("subscription filters = %v, want only type %s", sub.Filters, record.EventCreate)
	}
	if strings.Contains(string(src), record.EventCreated) {
		t.Errorf("func.yaml mentions the reply type %s; subscribing to it would loop", record.EventCreated)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
