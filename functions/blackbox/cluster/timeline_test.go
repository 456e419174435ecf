//go:build e2e

package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// A cold start's timeline: what the first request after zero waited for, step
// by step, from the logs of everything on its way: the activator (which holds
// the request), the autoscaler (which scales the revision up), the kubelet
// (the pod, its volumes, its probes), containerd (the sandbox and the
// containers), and the pod's own containers (queue-proxy and the function).
// The kubelet's and containerd's logs are files of the local cluster; on
// another cluster the timeline has the rest.

// coldRound is one request from zero and what is needed afterwards to trace it.
type coldRound struct {
	svc, rev   string
	start      time.Time
	took       time.Duration
	load       string // /proc/loadavg when the request was sent
	pod        string
	uid, ip    string
	containers []stamped // the pod's containers' logs, read while the pod was up
}

// stamped is one log line with its time and where it came from.
type stamped struct {
	at   time.Time
	from string
	text string
}

// loadAvg is this machine's load average (1, 5, 15 minutes).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// traceRound reads, right after a request from zero, the pod that answered it
// and its containers' logs (the pod is gone by the next round).
func traceRound(t *testing.T, r *coldRound) {
	t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name, UID         string
				CreationTimestamp time.Time
			}
			Status struct{ PodIP string }
		}
	}
	kubectlJSON(t, &list, "pods", "-l", "serving.knative.dev/revision="+r.rev)
	var newest time.Time
	for _, p := range list.Items {
		if r.pod == "" || p.Metadata.CreationTimestamp.After(newest) {
			r.pod, r.uid, r.ip, newest = p.Metadata.Name, p.Metadata.UID, p.Status.PodIP, p.Metadata.CreationTimestamp
		}
	}
	if r.pod == "" {
		return
	}
	for _, c := range []string{"queue-proxy", r.svc} {
		out, err := command(time.Minute, "kubectl", "logs", "--namespace", ns, r.pod, "-c", c, "--timestamps")
		if err != nil {
			t.Logf("timeline: logs of %s/%s: %v", r.pod, c, err)
			continue
		}
		for l := range strings.Lines(out) {
			ts, text, ok := strings.Cut(strings.TrimSpace(l), " ")
			if at, err := time.Parse(time.RFC3339Nano, ts); ok && err == nil {
				r.containers = append(r.containers, stamped{at, c, jsonMessage(text)})
			}
		}
	}
}

// jsonMessage shortens a JSON log line to its message (and the fields that say
// what it is about); any other line is kept as it is.
func jsonMessage(l string) string {
	var m map[string]any
	if json.Unmarshal([]byte(l), &m) != nil {
		return l
	}
	var parts []string
	for _, k := range []string{"msg", "message", "caller", "error"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprint(v))
		}
	}
	if len(parts) == 0 {
		return l
	}
	return strings.Join(parts, " | ")
}

// knativeLogs are a Knative component's log lines from `since` on that name
// the revision (or its pod), with their JSON timestamps.
func knativeLogs(t *testing.T, deploy string, r coldRound, since time.Time) []stamped {
	out, err := command(time.Minute, "kubectl", "logs", "--namespace", "knative-serving", "deploy/"+deploy,
		"--since-time", since.UTC().Format(time.RFC3339))
	if err != nil {
		t.Logf("timeline: logs of %s: %v", deploy, err)
		return nil
	}
	var s []stamped
	for l := range strings.Lines(out) {
		if !strings.Contains(l, r.rev) && (r.ip == "" || !strings.Contains(l, r.ip)) && !strings.Contains(l, r.pod) {
			continue
		}
		if deploy == "autoscaler" && !slices.ContainsFunc(autoscalerSteps, func(m string) bool { return strings.Contains(l, m) }) {
			continue
		}
		var m struct{ Timestamp time.Time }
		if json.Unmarshal([]byte(l), &m) == nil && !m.Timestamp.IsZero() {
			s = append(s, stamped{m.Timestamp, deploy, jsonMessage(l)})
		}
	}
	return s
}

// autoscalerSteps are the autoscaler's debug messages that mark a step of a
// scale from zero (its decision, the scale, the pods it counts); the rest are
// its reconcile loop, several times a second.
var autoscalerSteps = []string{"Desired StablePodCount", "Scaling from", "Successfully scaled", "PA scale got", "Observed pod counts"}

var (
	klogLine       = regexp.MustCompile(`^[IWE](\d{4} \d{2}:\d{2}:\d{2}\.\d{6})\s+\d+ (\S+)\] (.*)$`)
	containerdTime = regexp.MustCompile(`time="([^"]+)"`)
	sandboxID      = regexp.MustCompile(`returns sandbox id \\?"([0-9a-f]{64})`)
	containerID    = regexp.MustCompile(`returns container id \\?"([0-9a-f]{64})`)
)

// nodeLogs are the kubelet's and containerd's lines about the pod, from the
// local cluster's log files (CLUSTER_RUN/logs).
func nodeLogs(t *testing.T, r coldRound) []stamped {
	dir := os.Getenv("CLUSTER_RUN")
	if dir == "" || r.pod == "" {
		return nil
	}
	var s []stamped
	readLines(t, filepath.Join(dir, "logs", "kubelet.log"), func(l string) {
		m := klogLine.FindStringSubmatch(l)
		if m == nil || !(strings.Contains(l, r.pod) || strings.Contains(l, r.uid)) {
			return
		}
		at, err := time.Parse("0102 15:04:05.000000", m[1])
		if err != nil {
			return
		}
		at = time.Date(r.start.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second(), at.Nanosecond(), time.Local)
		s = append(s, stamped{at, "kubelet", m[2] + " " + short(m[3])})
	})
	// containerd names the pod in RunPodSandbox, the sandbox in CreateContainer,
	// and the container in StartContainer: follow the ids.
	// The ids first (a sandbox's own lines can come before the line that names
	// it), then every line that has one of them.
	ids := []string{r.pod, r.uid}
	about := func(l string) bool {
		return slices.ContainsFunc(ids, func(id string) bool { return id != "" && strings.Contains(l, id) })
	}
	path := filepath.Join(dir, "logs", "containerd.log")
	readLines(t, path, func(l string) {
		if !about(l) {
			return
		}
		for _, re := range []*regexp.Regexp{sandboxID, containerID} {
			if m := re.FindStringSubmatch(l); m != nil && !slices.Contains(ids, m[1]) {
				ids = append(ids, m[1])
			}
		}
	})
	readLines(t, path, func(l string) {
		if !about(l) {
			return
		}
		m := containerdTime.FindStringSubmatch(l)
		if m == nil {
			return
		}
		if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil {
			msg := l
			if i := strings.Index(l, "msg="); i >= 0 {
				msg = l[i+4:]
			}
			s = append(s, stamped{at, "containerd", short(msg)})
		}
	})
	return s
}

func readLines(t *testing.T, path string, each func(string)) {
	f, err := os.Open(path)
	if err != nil {
		t.Logf("timeline: %v", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		each(sc.Text())
	}
}

// short keeps a log message readable in one line.
func short(s string) string {
	s = strings.ReplaceAll(s, `\"`, `"`)
	if len(s) > 220 {
		return s[:220] + "..."
	}
	return s
}

// printTimeline prints the round's timeline, every step relative to the
// request, from one second before it to two after the answer.
func printTimeline(t *testing.T, r coldRound) {
	t.Helper()
	from, to := r.start.Add(-time.Second), r.start.Add(r.took+2*time.Second)
	steps := []stamped{
		{r.start, "test", "request sent through the ingress"},
		{r.start.Add(r.took), "test", "answer received"},
	}
	steps = append(steps, r.containers...)
	steps = append(steps, knativeLogs(t, "activator", r, from)...)
	steps = append(steps, knativeLogs(t, "autoscaler", r, from)...)
	steps = append(steps, nodeLogs(t, r)...)
	slices.SortStableFunc(steps, func(a, b stamped) int { return a.at.Compare(b.at) })
	fmt.Printf("e2e timeline: %s, median round of the first requests from zero: %s at %s, pod %s, load average %s\n",
		r.svc, r.took.Round(time.Millisecond), r.start.UTC().Format("15:04:05.000"), r.pod, r.load)
	seen := map[string]bool{}
	for _, s := range steps {
		// A message said again by the same source adds nothing to the timeline.
		if s.at.Before(from) || s.at.After(to) || seen[s.from+s.text] {
			continue
		}
		seen[s.from+s.text] = true
		fmt.Printf("e2e timeline: %+8.3fs %-11s %s\n", s.at.Sub(r.start).Seconds(), s.from, s.text)
	}
}

// debugLogs sets the activator's and the autoscaler's log level to debug (the
// level at which they say when they hold, probe and scale) for the test, on the
// local cluster only, and back afterwards. Knative's components follow
// config-logging without a restart.
func debugLogs(t *testing.T) {
	t.Helper()
	if !local {
		t.Log("timeline: not the local cluster: its Knative log levels are left as they are")
		return
	}
	set := func(level string) {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"knative.dev/example-checksum":null}},"data":{"loglevel.activator":%q,"loglevel.autoscaler":%q}}`, level, level)
		if out, err := command(time.Minute, "kubectl", "patch", "configmap", "config-logging", "--namespace", "knative-serving", "--type", "merge", "-p", patch); err != nil {
			t.Logf("timeline: config-logging %s: %v\n%s", level, err, out)
		}
	}
	set("debug")
	t.Cleanup(func() { set("info") })
	// The components read the change from their informers: give them a moment.
	time.Sleep(5 * time.Second)
}
