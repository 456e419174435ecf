// Package queueproxy holds no code, only tests: they build Knative Serving's own
// queue-proxy (knative.dev/serving/cmd/queue, at the version go.mod pins) and run each
// built function behind it with the environment Knative's revision reconciler gives
// the queue-proxy container. They show what a cluster would: readiness probes follow
// Redis, requests and CloudEvents pass through unchanged, containerConcurrency queues
// requests instead of overloading the function, and the queue-proxy's request metrics
// count them.
//
// queue-proxy binds its admin port 8022 and metrics ports 9090 and 9091 itself, on
// every interface, so only one runs at a time and the tests fail with a clear message
// when another process holds those ports.
package queueproxy
