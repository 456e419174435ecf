//go:build e2e

package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// docCommands reads the shell blocks of README.md and docs/*.md.
func docCommands(t *testing.T) []testenv.DocCommand {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	files = append([]string{filepath.Join(repoRoot, "README.md")}, files...)
	var cmds []testenv.DocCommand
	for _, f := range files {
		if filepath.Base(f) == "cluster.md" {
			continue // this suite's own page
		}
		cs, err := testenv.DocCommands(f)
		if err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cs...)
	}
	return cmds
}

// docVerdict says whether the suite types a documented command on the cluster,
// and if not, why.
func docVerdict(c string) (run bool, why string) {
	first := strings.Fields(c)[0]
	switch {
	case first == "export":
		return false, "not a command against the cluster"
	case first == "kind" || strings.HasPrefix(c, "kn quickstart"):
		return false, "path (a): needs Docker and kind, and the quickstart downloads Knative's release YAML and images"
	case strings.HasPrefix(c, "kubectl patch configmap"):
		return false, "path (b): changes the Knative configuration of a cloud cluster"
	case strings.HasPrefix(c, "kubectl config set-context"):
		return false, "the suite sets the context's namespace itself (CQRS_E2E_NAMESPACE)"
	case first == "." || strings.HasPrefix(c, "make cluster-"):
		return false, "make e2e brings the local cluster up, gives the suite its environment, and brings it down"
	case strings.Contains(c, "localhost") || strings.Contains(c, "127.0.0.1"):
		return false, "the local stack (make run), not the cluster"
	case strings.Contains(c, "sentinel"):
		return false, "Sentinel mode: the local cluster has no stand-in for Bitnami's Sentinel chart"
	case strings.HasPrefix(c, "make deploy OVERLAY=knative/cluster-local"):
		return false, "typed by TestOverlayClusterLocal"
	case c == "make deploy" || strings.HasPrefix(c, "make deploy "):
		return false, "typed by the suite's setup (TestMain)"
	case strings.HasPrefix(c, "make -n deploy"):
		return true, ""
	case first == "make" || first == "go" || first == "export" || first == "func":
		return false, "not a command against the cluster"
	case first == "helm" || strings.HasPrefix(c, "kubectl create secret"):
		return false, "part of make deploy (the local cluster has no chart; its secret exists)"
	case strings.HasPrefix(c, "kn event"):
		return false, "the kn event plugin is not built here"
	case strings.Contains(c, "event-display"):
		return false, "no event-display Service here; TestBroker subscribes a sink of its own with kn trigger create"
	case strings.HasPrefix(c, "kubectl logs") || strings.HasPrefix(c, "make undeploy"):
		return false, "follows logs forever / would remove what the other tests use"
	case strings.HasPrefix(c, "kubectl delete") || strings.HasPrefix(c, "kubectl label"):
		return false, "changes the deployment; TestClusterLocal and TestRedisMasterRestart do this with checks"
	case strings.HasPrefix(c, "kubectl get pods") && strings.HasSuffix(c, " -w"):
		return true, "" // typed without -w (a watch never ends)
	case first == "curl" && !strings.Contains(c, "$WRITE") && !strings.Contains(c, "$READ") && !strings.Contains(c, "$UI"):
		return false, "not addressed to a route"
	case first == "curl", first == "kn", strings.HasPrefix(c, "kubectl run"), strings.HasPrefix(c, "kubectl get"),
		urlVariable.MatchString(c):
		return true, ""
	}
	return false, "not recognised as a cluster command"
}

var (
	statusLine = regexp.MustCompile(`(?m)^HTTP/1\.1 (\d{3})`)
	// A line that sets one of the URL variables the docs' commands use.
	urlVariable = regexp.MustCompile(`^(WRITE|READ|UI|BROKER)=`)
	// The same for the three Services' routes.
	routeVariable = regexp.MustCompile(`^(WRITE|READ|UI)=`)
)

// TestDocCommands types every command of the documentation's shell blocks that
// addresses the cluster (README.md, docs/*.md), with WRITE, READ, UI and BROKER
// set as the documentation sets them. Route URLs do not resolve on the local
// cluster, so curl gets --connect-to and kn func an HTTP proxy pointing at the
// ingress, and `kubectl run --image=curlimages/curl` uses the image named by
// CQRS_E2E_CURL_IMAGE. Each command must exit 0; curl must get no 5xx; kn func
// invoke must print a reply event; kubectl run to the Broker must get 202.
func TestDocCommands(t *testing.T) {
	pre := []string{
		"set -eo pipefail",
		"export WRITE=" + urls["cqrs-write"], "export READ=" + urls["cqrs-read"], "export UI=" + urls["cqrs-ui"],
		"export BROKER=http://broker-ingress.knative-eventing.svc.cluster.local/" + ns + "/default",
	}
	if ingress != "" {
		pre = append(pre, `curl() { command curl --connect-to "::`+ingress+`" "$@"; }`)
	}
	prelude := strings.Join(pre, "\n") + "\n"
	var ran, skipped []string
	for _, c := range docCommands(t) {
		run, why := docVerdict(c.Text)
		oneLine := strings.Join(strings.Fields(c.Text), " ")
		where := filepath.Base(c.File) + ":" + strconv.Itoa(c.Line)
		if !run {
			skipped = append(skipped, fmt.Sprintf("%s: %s  -- %s", where, oneLine, why))
			continue
		}
		line := c.Text
		if strings.HasPrefix(line, "kubectl get pods") {
			line = strings.TrimSuffix(line, " -w")
		}
		if img := os.Getenv("CQRS_E2E_CURL_IMAGE"); img != "" {
			line = strings.ReplaceAll(line, "--image=curlimages/curl", "--image="+img)
		}
		if strings.HasPrefix(line, "kubectl run ") {
			// A name of its own, so a run never meets a pod of an earlier one.
			f := strings.Fields(line)
			line = strings.Replace(line, "kubectl run "+f[2], "kubectl run "+f[2]+"-"+nonce()[3:9], 1)
		}
		if m := urlVariable.FindStringSubmatch(line); m != nil {
			line += "\nprintf '%s' \"$" + m[1] + "\""
		}
		t.Logf("$ %s", oneLine)
		var env []string
		if strings.HasPrefix(oneLine, "kn func") {
			env = proxyEnv() // only kn func: curl has --connect-to
		}
		out, err := commandIn(repoRoot, env, 3*time.Minute, "bash", "-c", prelude+line)
		ran = append(ran, fmt.Sprintf("%s: %s", where, oneLine))
		if err != nil {
			t.Errorf("%s: %s: %v\n%s", where, oneLine, err, out)
			continue
		}
		switch {
		case strings.HasPrefix(oneLine, "kn func invoke"):
			if !strings.Contains(out, "dev.cqrs.record.created") && !strings.Contains(out, "dev.cqrs.records.result") {
				t.Errorf("%s: %s: no reply event in\n%s", where, oneLine, out)
			}
		case strings.HasPrefix(oneLine, "kubectl run"):
			if m := statusLine.FindStringSubmatch(out); m == nil || m[1] != "202" {
				t.Errorf("%s: %s: want 202 from the Broker, got\n%s", where, oneLine, out)
			}
		case strings.HasPrefix(oneLine, "curl"):
			if m := statusLine.FindStringSubmatch(out); m != nil && m[1] >= "500" {
				t.Errorf("%s: %s: got\n%s", where, oneLine, out)
			}
		case routeVariable.MatchString(oneLine):
			if !strings.HasPrefix(out, "http") {
				t.Errorf("%s: %s: got %q, want a URL", where, oneLine, out)
			}
		}
	}
	fmt.Printf("e2e doc commands typed on the cluster (%d):\n  %s\n", len(ran), strings.Join(ran, "\n  "))
	fmt.Printf("e2e doc commands not typed (%d):\n  %s\n", len(skipped), strings.Join(skipped, "\n  "))
	if len(ran) == 0 {
		t.Fatal("found no documented command to type")
	}
}
