package knative

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
	"github.com/cqrs-knative/cqrs-knative/ui"
)

// The module's import path; every ko:// image must name a main package inside it.
const modulePath = "github.com/cqrs-knative/cqrs-knative"

// What `ko apply -f knative/` applies: knative/ itself (not recursively); and what
// `make deploy` renders: the base and the overlays, as `kubectl kustomize
// --load-restrictor LoadRestrictionsNone` renders them (knative/render.sh then
// sets the namespace: TestRenderedIntoNamespace).
var (
	manifestDirs = []string{"."}
	overlayDirs  = []string{"base", "sentinel", "cluster-local", "tls", "sentinel-tls", "redis-cluster"}
)

// configTypes lists, per Service, the structs whose envconfig tags are the only
// environment names the process reads. serve.Config is the runtime's part, shared by
// all three services.
var configTypes = map[string][]reflect.Type{
	"cqrs-write": {reflect.TypeFor[write.Config](), reflect.TypeFor[serve.Config]()},
	"cqrs-read":  {reflect.TypeFor[read.Config](), reflect.TypeFor[serve.Config]()},
	"cqrs-ui":    {reflect.TypeFor[ui.Config](), reflect.TypeFor[serve.Config]()},
}

// doc is one YAML document of a manifest file.
type doc struct {
	file       string
	index      int
	apiVersion string
	kind       string
	name       string
	namespace  string
	json       []byte
}

func (d doc) String() string { return fmt.Sprintf("%s#%d (%s %s)", d.file, d.index, d.kind, d.name) }

// loadDocs reads every manifest directly inside dir the way kubectl and ko do:
// files ending in .yaml, .yml or .json, split into documents.
func loadDocs(t *testing.T, dir string) []doc {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var docs []doc
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		parsed, err := splitDocs(file, data)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, parsed...)
	}
	return docs
}

func splitDocs(file string, data []byte) ([]doc, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []doc
	for i := 0; ; i++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		j, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s#%d: %w", file, i, err)
		}
		if string(j) == "null" {
			continue // only comments
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(j, &head); err != nil {
			return nil, fmt.Errorf("%s#%d: %w", file, i, err)
		}
		docs = append(docs, doc{file: file, index: i, apiVersion: head.APIVersion, kind: head.Kind,
			name: head.Metadata.Name, namespace: head.Metadata.Namespace, json: j})
	}
}

func allDocs(t *testing.T) []doc {
	t.Helper()
	var docs []doc
	for _, dir := range manifestDirs {
		docs = append(docs, loadDocs(t, dir)...)
	}
	for _, dir := range overlayDirs {
		docs = append(docs, renderOverlay(t, dir)...)
	}
	return docs
}

// renderOverlay builds the kustomize overlay in dir with kustomize's own code; its
// documents are named dir/<kind>-<name>.
func renderOverlay(t *testing.T, dir string) []doc {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = kusttypes.LoadRestrictionsNone
	res, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatalf("kustomize %s: %v", dir, err)
	}
	docs, err := splitDocs(filepath.Join(dir, "kustomized"), out)
	if err != nil {
		t.Fatal(err)
	}
	for i := range docs {
		docs[i].file = filepath.Join(dir, strings.ToLower(docs[i].kind)+"-"+docs[i].name)
	}
	return docs
}

// services decodes every Knative Service strictly, keyed by directory and name.
func services(t *testing.T) map[string]map[string]*servingv1.Service {
	t.Helper()
	out := make(map[string]map[string]*servingv1.Service)
	for _, d := range allDocs(t) {
		if d.kind != "Service" || d.apiVersion != servingv1.SchemeGroupVersion.String() {
			continue
		}
		svc, err := decodeService(d.json)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		dir := filepath.Dir(d.file)
		if out[dir] == nil {
			out[dir] = make(map[string]*servingv1.Service)
		}
		out[dir][svc.Name] = svc
	}
	return out
}

// decodeService decodes a Service and refuses fields the type does not have, as an
// API server with field validation set to Strict would.
func decodeService(j []byte) (*servingv1.Service, error) {
	svc := &servingv1.Service{}
	if err := yaml.UnmarshalStrict(j, svc); err != nil {
		return nil, fmt.Errorf("strict decode: %w", err)
	}
	return svc, nil
}

// knativeContext carries Knative Serving's stock configuration (config-defaults,
// config-features, config-autoscaler as a fresh install has them).
func knativeContext() context.Context {
	ctx := context.Background()
	return config.ToContext(ctx, config.FromContextOrDefaults(ctx))
}

// resolveKo replaces ko:// images by digests, as ko does before it applies a
// manifest; Knative's validation insists on a parsable image reference.
func resolveKo(svc *servingv1.Service) {
	for i, c := range svc.Spec.Template.Spec.Containers {
		if p, ok := strings.CutPrefix(c.Image, "ko://"); ok {
			sum := sha256.Sum256([]byte(p))
			svc.Spec.Template.Spec.Containers[i].Image = fmt.Sprintf("example.com/cqrs/%s@sha256:%x", path.Base(p), sum)
		}
	}
}

// knativeCheck runs Knative's own defaulting and create-time validation on a copy of
// svc and returns every error and every warning it reports.
func knativeCheck(svc *servingv1.Service) error {
	svc = svc.DeepCopy()
	resolveKo(svc)
	ctx := knativeContext()
	svc.SetDefaults(apis.WithinCreate(ctx))
	fe := svc.Validate(apis.WithinCreate(ctx))
	var errs []error
	if e := fe.Filter(apis.ErrorLevel); e != nil {
		errs = append(errs, fmt.Errorf("knative validation error: %w", e))
	}
	if w := fe.Filter(apis.WarningLevel); w != nil {
		errs = append(errs, fmt.Errorf("knative validation warning: %w", w))
	}
	return errors.Join(errs...)
}

// shapeCheck checks what this project promises about every Service beyond what
// Knative enforces: scale bounds, concurrency, timeouts, resources, probes on the
// runtime's health paths and a restricted security context.
func shapeCheck(svc *servingv1.Service) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	tmpl := svc.Spec.Template
	if got := tmpl.Annotations["autoscaling.knative.dev/min-scale"]; got != "0" {
		bad("min-scale = %q, want \"0\" (scale to zero)", got)
	}
	if n, err := strconv.Atoi(tmpl.Annotations["autoscaling.knative.dev/max-scale"]); err != nil || n < 1 {
		bad("max-scale = %q, want a bound of at least 1", tmpl.Annotations["autoscaling.knative.dev/max-scale"])
	}
	if cc := tmpl.Spec.ContainerConcurrency; cc == nil || *cc < 1 {
		bad("containerConcurrency is not a positive bound")
	}
	if ts := tmpl.Spec.TimeoutSeconds; ts == nil || *ts < 1 {
		bad("timeoutSeconds is not set")
	}
	// The processes never call the Kubernetes API; a pod without the token volume
	// starts from zero with less of the kubelet's work in the way.
	if a := tmpl.Spec.AutomountServiceAccountToken; a == nil || *a {
		bad("automountServiceAccountToken is not false")
	}
	if n := len(tmpl.Spec.Containers); n != 1 {
		return fmt.Errorf("got %d containers, want 1", n)
	}
	c := tmpl.Spec.Containers[0]
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			bad("resources.requests.%s is not set", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			bad("resources.limits.%s is not set", r)
		}
	}
	for name, p := range map[string]*corev1.Probe{"/health/readiness": c.ReadinessProbe, "/health/liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != name {
			bad("no httpGet probe on %s", name)
		}
	}
	// A period makes queue-proxy probe at that pace instead of aggressively, which
	// adds up to a whole period to every cold start.
	if p := c.ReadinessProbe; p != nil && p.PeriodSeconds != 0 {
		bad("readinessProbe.periodSeconds = %d, want it unset for fast starts from zero", p.PeriodSeconds)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		bad("no securityContext")
	default:
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			bad("securityContext.runAsNonRoot is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("securityContext.allowPrivilegeEscalation is not false")
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			bad("securityContext.capabilities.drop is not [ALL]")
		}
		if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("securityContext.seccompProfile.type is not RuntimeDefault")
		}
	}
	return errors.Join(errs...)
}

// envTags returns the envconfig names the given config structs read.
func envTags(types []reflect.Type) map[string]bool {
	tags := make(map[string]bool)
	for _, t := range types {
		for f := range t.Fields() {
			if tag := f.Tag.Get("envconfig"); tag != "" {
				tags[tag] = true
			} else if f.Anonymous && f.Type.Kind() == reflect.Struct {
				// envconfig reads an embedded struct's variables as the outer one's.
				for k := range envTags([]reflect.Type{f.Type}) {
					tags[k] = true
				}
			}
		}
	}
	return tags
}

// envCheck reports env names the service's process never reads: a typo there is a
// setting that silently has no effect.
func envCheck(svc *servingv1.Service) error {
	types, ok := configTypes[svc.Name]
	if !ok {
		return fmt.Errorf("no config struct known for Service %q", svc.Name)
	}
	tags := envTags(types)
	var errs []error
	for _, e := range svc.Spec.Template.Spec.Containers[0].Env {
		if !tags[e.Name] {
			errs = append(errs, fmt.Errorf("env %s is not read by %s (known: %s)", e.Name, svc.Name, strings.Join(slices.Sorted(keys(tags)), ", ")))
		}
	}
	return errors.Join(errs...)
}

func env(svc *servingv1.Service) map[string]corev1.EnvVar {
	m := make(map[string]corev1.EnvVar)
	for _, e := range svc.Spec.Template.Spec.Containers[0].Env {
		m[e.Name] = e
	}
	return m
}

func TestManifestsAreKubernetesObjects(t *testing.T) {
	docs := allDocs(t)
	if len(docs) == 0 {
		t.Fatal("no manifests found")
	}
	for _, d := range docs {
		// `ko apply -f knative/` sends every file here to the API server; a Helm
		// values file or a stray document would make the whole deploy fail.
		if d.apiVersion == "" || d.kind == "" || d.name == "" {
			t.Errorf("%s: got apiVersion %q kind %q name %q, want all set", d, d.apiVersion, d.kind, d.name)
		}
		// Unrendered, everything is in default (the UI's WRITE_URL and READ_URL
		// say so); make deploy NAMESPACE=... renders another.
		if d.namespace != "default" {
			t.Errorf("%s: got namespace %q, want %q", d, d.namespace, "default")
		}
	}
}

func TestServicesPassKnativeValidation(t *testing.T) {
	all := services(t)
	want := map[string][]string{
		".":             {"cqrs-read", "cqrs-ui", "cqrs-write"},
		"base":          {"cqrs-read", "cqrs-ui", "cqrs-write"},
		"sentinel":      {"cqrs-read", "cqrs-ui", "cqrs-write"},
		"cluster-local": {"cqrs-read", "cqrs-ui", "cqrs-write"},
		"tls":           {"cqrs-read", "cqrs-ui", "cqrs-write"},
		"sentinel-tls":  {"cqrs-read", "cqrs-ui", "cqrs-write"},
		"redis-cluster": {"cqrs-read", "cqrs-ui", "cqrs-write"},
	}
	for dir, names := range want {
		if got := slices.Sorted(keys(all[dir])); !slices.Equal(got, names) {
			t.Errorf("Services in %s: got %v, want %v", dir, got, names)
		}
	}
	for dir, svcs := range all {
		for name, svc := range svcs {
			t.Run(filepath.Join(dir, name), func(t *testing.T) {
				if err := knativeCheck(svc); err != nil {
					t.Error(err)
				}
				if err := shapeCheck(svc); err != nil {
					t.Error(err)
				}
				if err := envCheck(svc); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

func keys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestChecksRejectBrokenServices shows that the checks above can fail: each case
// breaks a valid Service in one way that a cluster (or the process) would refuse or
// silently ignore.
func TestChecksRejectBrokenServices(t *testing.T) {
	src, err := os.ReadFile("cqrs-write.yaml")
	if err != nil {
		t.Fatal(err)
	}
	good, err := yaml.YAMLToJSON(src)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		edit   func(svc *servingv1.Service)
		raw    func(j []byte) []byte
		check  func(*servingv1.Service) error
		substr string
	}{
		{
			name: "unknown field",
			raw: func(j []byte) []byte {
				return bytes.Replace(j, []byte(`"containerConcurrency"`), []byte(`"containerConcurency"`), 1)
			},
			substr: "unknown field",
		},
		{
			name:   "reserved PORT env",
			edit:   func(s *servingv1.Service) { addEnv(s, "PORT", "9090") },
			check:  knativeCheck,
			substr: "PORT",
		},
		{
			name: "insecure default seccomp",
			edit: func(s *servingv1.Service) {
				s.Spec.Template.Spec.Containers[0].SecurityContext.SeccompProfile = nil
			},
			check:  knativeCheck,
			substr: "warning",
		},
		{
			name: "timeout above the cluster maximum",
			edit: func(s *servingv1.Service) {
				v := int64(3600)
				s.Spec.Template.Spec.TimeoutSeconds = &v
			},
			check:  knativeCheck,
			substr: "timeoutSeconds",
		},
		{
			name:   "env the process does not read",
			edit:   func(s *servingv1.Service) { addEnv(s, "REDIS_HOST", "x") },
			check:  envCheck,
			substr: "REDIS_HOST",
		},
		{
			name: "slow readiness probing",
			edit: func(s *servingv1.Service) {
				s.Spec.Template.Spec.Containers[0].ReadinessProbe.PeriodSeconds = 5
			},
			check:  shapeCheck,
			substr: "periodSeconds",
		},
		{
			name: "service account token mounted",
			edit: func(s *servingv1.Service) {
				s.Spec.Template.Spec.AutomountServiceAccountToken = nil
			},
			check:  shapeCheck,
			substr: "automountServiceAccountToken",
		},
		{
			name: "no liveness probe",
			edit: func(s *servingv1.Service) {
				s.Spec.Template.Spec.Containers[0].LivenessProbe = nil
			},
			check:  shapeCheck,
			substr: "/health/liveness",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := good
			if tt.raw != nil {
				j = tt.raw(j)
			}
			svc, err := decodeService(j)
			if err == nil {
				if err := knativeCheck(svc); tt.raw == nil && err != nil {
					t.Fatalf("unedited Service already fails: %v", err)
				}
				tt.edit(svc)
				err = tt.check(svc)
			}
			if err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("got error %v, want one mentioning %q", err, tt.substr)
			}
		})
	}
}

func addEnv(svc *servingv1.Service, name, value string) {
	c := &svc.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// goList returns the package name of each import path, as the go command sees it.
func goList(t *testing.T, paths []string) map[string]string {
	t.Helper()
	args := append([]string{"list", "-e", "-f", "{{.ImportPath}} {{.Name}} {{if .Error}}{{.Error}}{{end}}"}, paths...)
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	names := make(map[string]string)
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 2 {
			names[f[0]] = f[1]
		} else if len(f) > 0 {
			t.Errorf("go list %s: %s", f[0], strings.TrimSpace(line))
		}
	}
	return names
}

func TestImagesAreMainPackagesOfThisModule(t *testing.T) {
	var paths []string
	for _, svcs := range services(t) {
		for name, svc := range svcs {
			img := svc.Spec.Template.Spec.Containers[0].Image
			p, ok := strings.CutPrefix(img, "ko://")
			if !ok {
				t.Errorf("%s: image %q, want a ko:// import path", name, img)
				continue
			}
			if !strings.HasPrefix(p, modulePath+"/") {
				t.Errorf("%s: image %q is not in module %s", name, img, modulePath)
			}
			// ko names the image after the last path element; keep it the Service's.
			if path.Base(p) != name {
				t.Errorf("%s: image %q, want a main package named %s", name, img, name)
			}
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	names := goList(t, paths)
	for _, p := range paths {
		if names[p] != "main" {
			t.Errorf("go list %s: got package %q, want main", p, names[p])
		}
	}

	// Every image has a build entry in .ko.yaml for the same package.
	var ko struct {
		DefaultBaseImage string `json:"defaultBaseImage"`
		Builds           []struct {
			ID   string `json:"id"`
			Main string `json:"main"`
		} `json:"builds"`
	}
	data, err := os.ReadFile("../.ko.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &ko); err != nil {
		t.Fatalf(".ko.yaml: %v", err)
	}
	if ko.DefaultBaseImage == "" {
		t.Error(".ko.yaml: no defaultBaseImage")
	}
	var mains []string
	for _, b := range ko.Builds {
		mains = append(mains, path.Join(modulePath, strings.TrimPrefix(b.Main, "./")))
	}
	slices.Sort(mains)
	if !slices.Equal(mains, paths) {
		t.Errorf(".ko.yaml builds: got mains %v, want %v", mains, paths)
	}
}

// values reads a Helm values file into nested maps.
func values(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// lookup walks dotted keys through nested maps.
func lookup(v map[string]any, key string) any {
	var cur any = v
	for k := range strings.SplitSeq(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// Redis' default maxclients; Bitnami's chart leaves it alone.
const redisMaxClients = 10000

func TestRedisValuesMatchServices(t *testing.T) {
	all := services(t)
	tests := []struct {
		file     string
		dir      string
		want     map[string]any
		sentinel bool
	}{
		{file: "redis/values.yaml", dir: ".", want: map[string]any{
			"architecture": "replication", "replica.replicaCount": float64(1), "sentinel.enabled": false,
		}},
		{file: "redis/values-sentinel.yaml", dir: "sentinel", sentinel: true, want: map[string]any{
			"architecture": "replication", "sentinel.enabled": true,
			// The functions send no password to the Sentinels.
			"auth.sentinel": false,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			v := values(t, tt.file)
			for k, want := range tt.want {
				if got := lookup(v, k); got != want {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			full, _ := lookup(v, "fullnameOverride").(string)
			if full != "cqrs-redis" {
				t.Fatalf("fullnameOverride = %q, want cqrs-redis (the Services use its names)", full)
			}
			if lookup(v, "auth.enabled") != true {
				t.Error("auth.enabled is not true")
			}
			secret, _ := lookup(v, "auth.existingSecret").(string)
			key, _ := lookup(v, "auth.existingSecretPasswordKey").(string)

			ws, rs := all[tt.dir]["cqrs-write"], all[tt.dir]["cqrs-read"]
			if ws == nil || rs == nil {
				t.Fatalf("%s: cqrs-write or cqrs-read missing", tt.dir)
			}
			wantEnv := map[*servingv1.Service]map[string]string{
				ws: {"REDIS_ADDR": full + "-master:6379"},
				rs: {"REDIS_ADDR": full + "-replicas:6379", "REDIS_MASTER_ADDR": full + "-master:6379"},
			}
			if tt.sentinel {
				set, _ := lookup(v, "sentinel.masterSet").(string)
				port, _ := lookup(v, "sentinel.service.ports.sentinel").(float64)
				sentinel := map[string]string{
					"REDIS_SENTINEL_ADDRS": fmt.Sprintf("%s:%d", full, int(port)), "REDIS_SENTINEL_MASTER": set,
					// Ignored with Sentinels; present it would only mislead.
					"REDIS_ADDR": "", "REDIS_MASTER_ADDR": "",
				}
				wantEnv = map[*servingv1.Service]map[string]string{ws: sentinel, rs: sentinel}
			}
			budget := map[string]int{}
			for svc, want := range wantEnv {
				e := env(svc)
				for name, value := range want {
					if got := e[name].Value; got != value {
						t.Errorf("%s: %s = %q, want %q", svc.Name, name, got, value)
					}
				}
				ref := e["REDIS_PASSWORD"].ValueFrom
				if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != secret || ref.SecretKeyRef.Key != key {
					t.Errorf("%s: REDIS_PASSWORD does not come from secret %q key %q", svc.Name, secret, key)
				}
				pool, err := strconv.Atoi(e["REDIS_POOL_SIZE"].Value)
				if err != nil {
					t.Errorf("%s: REDIS_POOL_SIZE = %q, want it set so the connection bound is explicit", svc.Name, e["REDIS_POOL_SIZE"].Value)
				}
				maxScale, _ := strconv.Atoi(svc.Spec.Template.Annotations["autoscaling.knative.dev/max-scale"])
				if cc := svc.Spec.Template.Spec.ContainerConcurrency; cc == nil || int(*cc) > pool {
					t.Errorf("%s: containerConcurrency above REDIS_POOL_SIZE %d: requests would queue for connections", svc.Name, pool)
				}
				if svc == ws {
					budget["master"] += maxScale * pool
				} else {
					budget["replicas"] += maxScale * pool
					if e["READ_FALLBACK"].Value != read.FallbackNone {
						budget["master"] += maxScale * pool
					}
				}
			}
			checkMemory(t, v, "commonConfiguration", "master", "replica")
			// Half of maxclients stays free for replication links, Sentinels and
			// operators' redis-cli connections.
			for role, n := range budget {
				if n > redisMaxClients/2 {
					t.Errorf("at max-scale, %d pooled connections to the %s, want at most %d", n, role, redisMaxClients/2)
				}
			}
		})
	}
}

func TestClusterLocalOverlayHidesOnlyTheFunctions(t *testing.T) {
	// In production only the UI is public: the functions take events from the Broker
	// and requests from the UI by their cluster-local URLs.
	const label = "networking.knative.dev/visibility"
	all := services(t)
	for name, svc := range all["cluster-local"] {
		got := svc.Labels[label]
		want := "cluster-local"
		if name == "cqrs-ui" {
			want = ""
		}
		if got != want {
			t.Errorf("cluster-local/%s: %s = %q, want %q", name, label, got, want)
		}
	}
	for name, svc := range all["."] {
		if got := svc.Labels[label]; got != "" {
			t.Errorf("%s: %s = %q, want the plain manifests public", name, label, got)
		}
	}
}

func TestServicesAgreeOnRecordTypes(t *testing.T) {
	// The page offers the UI's types; a type the functions do not know would be
	// refused on save, one the page does not offer could never be searched by it.
	for dir, svcs := range services(t) {
		want := ""
		for _, name := range []string{"cqrs-write", "cqrs-read", "cqrs-ui"} {
			svc, ok := svcs[name]
			if !ok {
				t.Fatalf("%s: no %s", dir, name)
			}
			got := env(svc)["RECORD_TYPES"].Value
			if got == "" {
				t.Errorf("%s/%s: RECORD_TYPES not set; set it on all three Services", dir, name)
			}
			if want == "" {
				want = got
			} else if got != want {
				t.Errorf("%s/%s: RECORD_TYPES = %q, want %q as on cqrs-write", dir, name, got, want)
			}
		}
	}
}

// checkMemory: every Redis node of a values file has a maxmemory below its
// container's memory limit, with room to spare, and the noeviction policy: a full
// Redis refuses writes (the functions answer 503 store_full), and nothing the store
// needs is ever evicted. confKey is where the chart takes the nodes' redis.conf lines,
// nodes the keys of the node kinds whose resources it sets.
func checkMemory(t *testing.T, v map[string]any, confKey string, nodes ...string) {
	t.Helper()
	conf, _ := lookup(v, confKey).(string)
	settings := map[string]string{}
	for line := range strings.SplitSeq(conf, "\n") {
		if k, val, ok := strings.Cut(strings.TrimSpace(line), " "); ok && !strings.HasPrefix(k, "#") {
			settings[k] = strings.TrimSpace(val)
		}
	}
	if got := settings["maxmemory-policy"]; got != "noeviction" {
		t.Errorf("%s: maxmemory-policy %q, want noeviction", confKey, got)
	}
	if got := settings["appendonly"]; got != "yes" {
		t.Errorf("%s: appendonly %q, want yes (the chart's default, which the value replaces)", confKey, got)
	}
	maxmemory, err := redisBytes(settings["maxmemory"])
	if err != nil || maxmemory == 0 {
		t.Fatalf("%s: maxmemory %q (%v), want a limit", confKey, settings["maxmemory"], err)
	}
	limits := 0
	for _, node := range nodes {
		limit, ok := lookup(v, node+".resources.limits.memory").(string)
		if !ok {
			continue // the node kind this architecture does not run
		}
		limits++
		q, err := resource.ParseQuantity(limit)
		if err != nil {
			t.Fatalf("%s.resources.limits.memory %q: %v", node, limit, err)
		}
		if maxmemory*4 > q.Value()*3 {
			t.Errorf("maxmemory %d bytes is over 75%% of the %s container's limit %s: an AOF rewrite or client buffers would push Redis past it", maxmemory, node, limit)
		}
	}
	if limits == 0 {
		t.Errorf("no memory limit at %v.resources.limits.memory: maxmemory bounds nothing the container is held to", nodes)
	}
}

// redisBytes reads a Redis memory size: bytes, or a number with kb, mb or gb (powers
// of 1024, as Redis reads them).
func redisBytes(s string) (int64, error) {
	s = strings.ToLower(s)
	mult := int64(1)
	for suffix, m := range map[string]int64{"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = n, m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// TestSearchesOneReplicaWaitsBehind: a plain read on a replica waits behind at most
// the searches running there, each of which holds Redis for at most
// store.SearchTime. Every read pod runs READ_SEARCH_SLOTS of them at once, and
// max-scale bounds the pods, so their product bounds the wait; this keeps it within
// what a plain read may wait at its p99.
func TestSearchesOneReplicaWaitsBehind(t *testing.T) {
	const bound = 50 * time.Millisecond
	for dir, svcs := range services(t) {
		rs := svcs["cqrs-read"]
		if rs == nil {
			continue
		}
		slots := read.DefaultConfig().ReadSearchSlots
		if v := env(rs)["READ_SEARCH_SLOTS"].Value; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: READ_SEARCH_SLOTS = %q", dir, v)
			}
			slots = n
		}
		maxScale, err := strconv.Atoi(rs.Spec.Template.Annotations["autoscaling.knative.dev/max-scale"])
		if err != nil {
			t.Fatalf("%s: cqrs-read has no max-scale: the searches at once would be unbounded", dir)
		}
		if wait := time.Duration(slots*maxScale) * store.SearchTime; wait > bound {
			t.Errorf("%s: %d search slots x max-scale %d x %s = %s of searches a read may wait behind on one replica, want at most %s",
				dir, slots, maxScale, store.SearchTime, wait, bound)
		}
	}
}
