package knative

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// renderKustomization returns the kustomization that knative/render.sh (make
// deploy) writes to render overlay into namespace ns.
func renderKustomization(t *testing.T, ns, overlay string) []byte {
	t.Helper()
	out, err := exec.Command("bash", "render.sh", "--kustomization", ns, overlay).CombinedOutput()
	if err != nil {
		t.Fatalf("render.sh --kustomization %s %s: %v\n%s", ns, overlay, err, out)
	}
	return out
}

// buildKustomization builds a kustomization written where render.sh writes its
// own (knative/.render-*), with kustomize's own code.
func buildKustomization(t *testing.T, kustomization []byte) []doc {
	t.Helper()
	dir, err := os.MkdirTemp(".", ".render-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), kustomization, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = kusttypes.LoadRestrictionsNone
	res, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize:\n%s\n%v", kustomization, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	docs, err := splitDocs("rendered", out)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// namespaceCheck reports every object outside ns, and UI URLs of the functions
// that do not name ns: Knative routes cluster-local requests by
// <service>.<namespace>[.svc[.cluster.local]], so a URL naming another namespace
// reaches another deployment or none.
func namespaceCheck(docs []doc, ns string) error {
	var errs []error
	ui := 0
	for _, d := range docs {
		if d.namespace != ns {
			errs = append(errs, fmt.Errorf("%s: namespace %q, want %q", d, d.namespace, ns))
		}
		if d.kind != "Service" || d.name != "cqrs-ui" {
			continue
		}
		ui++
		var svc servingv1.Service
		if err := yaml.Unmarshal(d.json, &svc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
			continue
		}
		e := env(&svc)
		for name, fn := range map[string]string{"WRITE_URL": "cqrs-write", "READ_URL": "cqrs-read"} {
			if got, want := e[name].Value, "http://"+fn+"."+ns+".svc.cluster.local"; got != want {
				errs = append(errs, fmt.Errorf("%s: %s = %q, want %q", d, name, got, want))
			}
		}
	}
	if ui != 1 {
		errs = append(errs, fmt.Errorf("got %d cqrs-ui Services, want 1", ui))
	}
	return errors.Join(errs...)
}

// TestRenderedIntoNamespace: what make deploy NAMESPACE=... applies, for the base
// and each overlay, has every object (Services, Broker, Triggers) in that
// namespace and the UI's function URLs naming it; without the replacements the
// URLs would keep naming default, which the check rejects.
func TestRenderedIntoNamespace(t *testing.T) {
	const ns = "cqrs-test"
	for _, dir := range overlayDirs {
		t.Run(dir, func(t *testing.T) {
			k := renderKustomization(t, ns, "knative/"+dir)
			docs := buildKustomization(t, k)
			kinds := map[string]int{}
			for _, d := range docs {
				kinds[d.kind]++
			}
			if kinds["Service"] != 3 || kinds["Broker"] != 1 || kinds["Trigger"] != 2 {
				t.Errorf("rendered kinds %v, want 3 Services, 1 Broker, 2 Triggers", kinds)
			}
			if err := namespaceCheck(docs, ns); err != nil {
				t.Error(err)
			}

			withoutReplacements, _, found := strings.Cut(string(k), "replacements:")
			if !found {
				t.Fatalf("render.sh's kustomization has no replacements:\n%s", k)
			}
			err := namespaceCheck(buildKustomization(t, []byte(withoutReplacements)), ns)
			if err == nil || !strings.Contains(err.Error(), "WRITE_URL") {
				t.Errorf("without the replacements: got %v, want the URLs naming default rejected", err)
			}
		})
	}
}

// TestRenderRefusesBadInput: render.sh refuses a namespace that is not a DNS
// label and an overlay that is not one, naming the variable.
func TestRenderRefusesBadInput(t *testing.T) {
	for _, args := range [][]string{{"Cqrs"}, {""}, {"-cqrs"}, {strings.Repeat("a", 64)}, {"cqrs", "knative/missing"}, {"cqrs", "/abs"}} {
		out, err := exec.Command("bash", append([]string{"render.sh", "--kustomization"}, args...)...).CombinedOutput()
		want := "NAMESPACE"
		if len(args) == 2 {
			want = "OVERLAY"
		}
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("render.sh %q: got %v %q, want a refusal naming %s", args, err, out, want)
		}
	}
}
