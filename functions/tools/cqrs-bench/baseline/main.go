// Command baseline is the smallest Go HTTP function over the same Redis as the
// functions: the yardstick of cqrs-bench. A create is one JSON decode and one SET on
// the master; a read is one GET, on the replica, of a stored page as large as a real
// one. It uses the same Redis client settings as the functions and nothing else:
// no validation, no index, no logging, no metrics.
//
// Environment: PORT, REDIS_ADDR (master), REDIS_REPLICA_ADDR, PAGE_KEY (the key that
// holds the page to serve).
package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// keyspace bounds the keys the creates write, as redis-benchmark -r does, so the
// baseline's memory stays small and the bench can delete its keys afterwards.
const keyspace = 100000

func main() {
	master := store.NewClient(store.Options{Addr: os.Getenv("REDIS_ADDR")})
	replica := store.NewClient(store.Options{Addr: os.Getenv("REDIS_REPLICA_ADDR")})
	pageKey := os.Getenv("PAGE_KEY")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, r *http.Request) {
		if err := replica.Ping(r.Context()).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("POST /records", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		var in struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err == nil {
			err = json.Unmarshal(body, &in)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		key := "bench:base:" + strconv.Itoa(rand.IntN(keyspace))
		if err := master.Set(context.Background(), key, body, 0).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	})
	mux.HandleFunc("GET /records", func(w http.ResponseWriter, r *http.Request) {
		page, err := replica.Get(r.Context(), pageKey).Bytes()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(page)
	})
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		os.Stderr.WriteString("baseline: " + err.Error() + "\n")
		os.Exit(1)
	}
}
