package knative

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// The Redis Cluster variant: Bitnami's redis-cluster chart with
// redis/values-cluster.yaml, and the overlay redis-cluster over the plain manifests.
const (
	clusterValues  = "redis/values-cluster.yaml"
	clusterOverlay = "redis-cluster"
	// The chart's Service port for Redis unless service.ports.redis says otherwise.
	clusterChartPort = 6379
)

// The variables of the other modes, which a function on a Redis Cluster must not
// carry: set, they would only mislead (the cluster's seeds win over them).
var notInClusterMode = []string{"REDIS_ADDR", "REDIS_MASTER_ADDR", "REDIS_SENTINEL_ADDRS", "REDIS_SENTINEL_MASTER"}

// clusterShape is what the values make: the chart's Service name and port, the
// masters and the password's Secret.
type clusterShape struct {
	seed        string
	masters     int
	secret, key string
}

// clusterValuesCheck reports every way the redis-cluster values differ from what
// the overlay and the other modes' values promise: the names the overlay uses, three
// masters with a replica each, the password from the Secret of values.yaml, data
// kept on volumes with AOF, and an image that can still be pulled (a pinned tag, not
// from docker.io/bitnami, which holds none since 2025). The memory settings are
// checkMemory's.
func clusterValuesCheck(v, plain map[string]any) (clusterShape, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var s clusterShape
	full, _ := lookup(v, "fullnameOverride").(string)
	if want, _ := lookup(plain, "fullnameOverride").(string); full != want {
		bad("fullnameOverride = %q, want %q as in values.yaml (the overlay names its Service)", full, want)
	}
	port := clusterChartPort
	if p, ok := lookup(v, "service.ports.redis").(float64); ok {
		port = int(p)
	}
	s.seed = fmt.Sprintf("%s:%d", full, port)

	nodes, _ := lookup(v, "cluster.nodes").(float64)
	replicas, _ := lookup(v, "cluster.replicas").(float64)
	if replicas < 1 {
		bad("cluster.replicas = %v, want at least 1: the read function reads replicas", replicas)
	} else if n := int(nodes); n%(int(replicas)+1) != 0 || n/(int(replicas)+1) < 3 {
		bad("cluster.nodes = %v with cluster.replicas = %v: want at least 3 masters, each with the same number of replicas", nodes, replicas)
	} else {
		s.masters = n / (int(replicas) + 1)
	}

	if lookup(v, "usePassword") != true {
		bad("usePassword is not true")
	}
	s.secret, _ = lookup(v, "existingSecret").(string)
	s.key, _ = lookup(v, "existingSecretPasswordKey").(string)
	if want, _ := lookup(plain, "auth.existingSecret").(string); s.secret != want {
		bad("existingSecret = %q, want %q, the Secret make deploy makes", s.secret, want)
	}
	if want, _ := lookup(plain, "auth.existingSecretPasswordKey").(string); s.key != want {
		bad("existingSecretPasswordKey = %q, want %q", s.key, want)
	}

	if lookup(v, "persistence.enabled") != true {
		bad("persistence.enabled is not true: the data would not outlive a pod")
	}
	if got := lookup(v, "redis.useAOFPersistence"); got != "yes" {
		bad("redis.useAOFPersistence = %v, want \"yes\"", got)
	}

	repo, _ := lookup(v, "image.repository").(string)
	tag, _ := lookup(v, "image.tag").(string)
	switch {
	case tag == "" || tag == "latest":
		bad("image.tag = %q, want a pinned version", tag)
	case repo == "" || strings.HasPrefix(repo, "bitnami/"):
		bad("image.repository = %q: docker.io/bitnami keeps no versioned images since 2025", repo)
	case strings.HasPrefix(repo, "bitnamilegacy/") && lookup(v, "global.security.allowInsecureImages") != true:
		bad("image.repository = %q without global.security.allowInsecureImages: the chart refuses an image it does not know", repo)
	}
	return s, errors.Join(errs...)
}

// clusterServiceCheck reports every way a function of the overlay fails to reach
// the chart's cluster as the process reads its environment: the seed is the chart's
// Service, the partitions are at least the masters, the password is the nodes', the
// other modes' variables are gone, the configuration loads and checks, and nothing
// else differs from the plain Service.
func clusterServiceCheck(svc, plain *servingv1.Service, s clusterShape) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(svc.Name+": "+format, args...)) }
	e := env(svc)
	if got := e["REDIS_CLUSTER_ADDRS"].Value; got != s.seed {
		bad("REDIS_CLUSTER_ADDRS = %q, want %q, the chart's Service", got, s.seed)
	}
	if p, err := strconv.Atoi(e["REDIS_PARTITIONS"].Value); err != nil || p < s.masters {
		bad("REDIS_PARTITIONS = %q, want a count of at least %d, the masters (a partition never splits)", e["REDIS_PARTITIONS"].Value, s.masters)
	}
	for _, name := range notInClusterMode {
		if _, ok := e[name]; ok {
			bad("%s set; a function on a Redis Cluster finds the nodes from REDIS_CLUSTER_ADDRS", name)
		}
	}
	ref := e["REDIS_PASSWORD"].ValueFrom
	if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != s.secret || ref.SecretKeyRef.Key != s.key {
		bad("REDIS_PASSWORD does not come from Secret %q key %q", s.secret, s.key)
	}
	if _, err := loadConfig(svc); err != nil {
		bad("the process would stop at start: %v", err)
	}
	pe := env(plain)
	for _, name := range append([]string{"REDIS_CLUSTER_ADDRS", "REDIS_PARTITIONS"}, notInClusterMode...) {
		delete(e, name)
		delete(pe, name)
	}
	for name, v := range pe {
		if !reflect.DeepEqual(e[name], v) {
			bad("%s = %v, want %v as on one master", name, e[name], v)
		}
		delete(e, name)
	}
	for name := range e {
		bad("%s set on a Redis Cluster only", name)
	}
	return errors.Join(errs...)
}

// loadConfig reads svc's environment the way its process does (serve.Load over the
// function's defaults, then its Check), each Secret's value standing in as a word,
// and returns the Redis settings it ends with.
func loadConfig(svc *servingv1.Service) (redisenv.Redis, error) {
	vars := map[string]string{}
	for _, e := range svc.Spec.Template.Spec.Containers[0].Env {
		vars[e.Name] = e.Value
		if e.ValueFrom != nil {
			vars[e.Name] = "from-a-secret"
		}
	}
	var r redisenv.Redis
	err := withEnv(vars, func() error {
		switch svc.Name {
		case "cqrs-write":
			c, err := serve.Load(write.DefaultConfig())
			r = c.Redis
			return err
		case "cqrs-read":
			c, err := serve.Load(read.DefaultConfig())
			r = c.Redis
			return err
		}
		return fmt.Errorf("no configuration known for %s", svc.Name)
	})
	return r, err
}

// withEnv runs f with vars set in the process environment, and sets it back after.
// The package's tests do not run in parallel.
func withEnv(vars map[string]string, f func() error) error {
	for name, v := range vars {
		old, had := os.LookupEnv(name)
		if err := os.Setenv(name, v); err != nil {
			return err
		}
		defer func() {
			if had {
				os.Setenv(name, old)
			} else {
				os.Unsetenv(name)
			}
		}()
	}
	return f()
}

// TestRedisClusterVariant: the redis-cluster values and the overlay agree with each
// other and with the other modes: both functions at the chart's Service with the
// same partitions, loaded as their processes load them, changing nothing else; the
// nodes' memory bounded with noeviction; and the connections a node may see at
// max-scale within half its maxclients.
func TestRedisClusterVariant(t *testing.T) {
	v, plainValues := values(t, clusterValues), values(t, "redis/values.yaml")
	shape, err := clusterValuesCheck(v, plainValues)
	if err != nil {
		t.Error(err)
	}
	checkMemory(t, v, "redis.configmap", "redis")

	all := services(t)
	loaded := map[string]redisenv.Redis{}
	for _, name := range []string{"cqrs-write", "cqrs-read"} {
		svc, plain := all[clusterOverlay][name], all["."][name]
		if svc == nil || plain == nil {
			t.Fatalf("%s or the plain manifests lack %s", clusterOverlay, name)
		}
		if err := clusterServiceCheck(svc, plain, shape); err != nil {
			t.Error(err)
		}
		r, err := loadConfig(svc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		loaded[name] = r
	}
	// A function whose partition count is not the store's is refused at its first
	// call: the two must agree, as their processes read it.
	if w, r := loaded["cqrs-write"].Partitions(), loaded["cqrs-read"].Partitions(); w != r || w < 2 {
		t.Errorf("partitions: cqrs-write %d, cqrs-read %d, want the same count, more than one", w, r)
	}
	if ui, plain := all[clusterOverlay]["cqrs-ui"], all["."]["cqrs-ui"]; fmt.Sprint(env(ui)) != fmt.Sprint(env(plain)) {
		t.Errorf("cqrs-ui's env differs from the plain manifests'; the UI does not talk to Redis")
	}

	// Every pod keeps a pool of REDIS_POOL_SIZE per node it talks to: cqrs-write to
	// each master, cqrs-read to each replica and, for its fallback, each master.
	budget := map[string]int{}
	for _, name := range []string{"cqrs-write", "cqrs-read"} {
		svc := all[clusterOverlay][name]
		e := env(svc)
		pool, err := strconv.Atoi(e["REDIS_POOL_SIZE"].Value)
		if err != nil {
			t.Fatalf("%s: REDIS_POOL_SIZE = %q", name, e["REDIS_POOL_SIZE"].Value)
		}
		maxScale, _ := strconv.Atoi(svc.Spec.Template.Annotations["autoscaling.knative.dev/max-scale"])
		if name == "cqrs-write" {
			budget["master"] += maxScale * pool
			continue
		}
		budget["replica"] += maxScale * pool
		if e["READ_FALLBACK"].Value != read.FallbackNone {
			budget["master"] += maxScale * pool
		}
	}
	for role, n := range budget {
		if n > redisMaxClients/2 {
			t.Errorf("at max-scale, %d pooled connections to each %s, want at most %d", n, role, redisMaxClients/2)
		}
	}
}

// TestRedisClusterChecksRejectBrokenTwins shows that the checks above can fail.
func TestRedisClusterChecksRejectBrokenTwins(t *testing.T) {
	all := services(t)
	plainValues := values(t, "redis/values.yaml")
	shape, err := clusterValuesCheck(values(t, clusterValues), plainValues)
	if err != nil {
		t.Fatalf("unedited values already fail: %v", err)
	}
	svcTests := []struct {
		name   string
		svc    string
		edit   func(*servingv1.Service)
		substr string
	}{
		{"the master's Service as the seed", "cqrs-write", func(s *servingv1.Service) {
			setEnv(s, "REDIS_CLUSTER_ADDRS", "cqrs-redis-master:6379")
		}, "REDIS_CLUSTER_ADDRS"},
		{"fewer partitions than masters", "cqrs-read", func(s *servingv1.Service) { setEnv(s, "REDIS_PARTITIONS", "2") }, "REDIS_PARTITIONS"},
		{"partitions the process refuses", "cqrs-write", func(s *servingv1.Service) { setEnv(s, "REDIS_PARTITIONS", "4096") }, "REDIS_PARTITIONS=4096"},
		{"REDIS_ADDR left", "cqrs-write", func(s *servingv1.Service) { addEnv(s, "REDIS_ADDR", "cqrs-redis-master:6379") }, "REDIS_ADDR set"},
		{"Sentinels too", "cqrs-read", func(s *servingv1.Service) { addEnv(s, "REDIS_SENTINEL_ADDRS", "cqrs-redis:26379") }, "REDIS_SENTINEL_ADDRS"},
		{"another password", "cqrs-read", func(s *servingv1.Service) { setRef(s, "REDIS_PASSWORD", "cqrs-redis-acl", "cqrs-read") }, "REDIS_PASSWORD"},
		{"another variable changed", "cqrs-read", func(s *servingv1.Service) { setEnv(s, "READ_MAX_WAIT", "1s") }, "READ_MAX_WAIT"},
		{"a variable of its own", "cqrs-write", func(s *servingv1.Service) { addEnv(s, "WRITE_REPLICAS", "1") }, "WRITE_REPLICAS"},
	}
	for _, tt := range svcTests {
		t.Run(tt.name, func(t *testing.T) {
			good, plain := all[clusterOverlay][tt.svc], all["."][tt.svc]
			if err := clusterServiceCheck(good, plain, shape); err != nil {
				t.Fatalf("unedited Service already fails: %v", err)
			}
			s := good.DeepCopy()
			tt.edit(s)
			if err := clusterServiceCheck(s, plain, shape); err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("got %v, want an error naming %s", err, tt.substr)
			}
		})
	}
	valueTests := []struct {
		name   string
		key    string
		value  any
		substr string
	}{
		{"another name", "fullnameOverride", "cqrs-redis-cluster", "fullnameOverride"},
		{"no replicas", "cluster.replicas", float64(0), "cluster.replicas"},
		{"two masters", "cluster.nodes", float64(4), "cluster.nodes"},
		{"the chart's own password", "existingSecret", "", "existingSecret"},
		{"no volumes", "persistence.enabled", false, "persistence.enabled"},
		{"no AOF", "redis.useAOFPersistence", "no", "useAOFPersistence"},
		{"a rolling tag", "image.tag", "latest", "image.tag"},
		{"the repository Bitnami emptied", "image.repository", "bitnami/redis-cluster", "image.repository"},
		{"the legacy image refused", "global.security.allowInsecureImages", false, "allowInsecureImages"},
	}
	for _, tt := range valueTests {
		t.Run(tt.name, func(t *testing.T) {
			v := values(t, clusterValues)
			set(v, tt.key, tt.value)
			if _, err := clusterValuesCheck(v, plainValues); err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("got %v, want an error naming %s", err, tt.substr)
			}
		})
	}
}

// set puts value at the dotted key of nested maps, which must exist but for the last.
func set(v map[string]any, key string, value any) {
	parts := strings.Split(key, ".")
	m := v
	for _, k := range parts[:len(parts)-1] {
		m = m[k].(map[string]any)
	}
	m[parts[len(parts)-1]] = value
}
