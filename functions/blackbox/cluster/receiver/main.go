// Command receiver is the end-to-end suite's event subscriber inside the cluster:
// a Trigger delivers CloudEvents to it, it keeps every delivery in memory, in the
// order they came, and lists them on GET /events. The suite reads that list to
// see what a consumer of the Broker sees, duplicates included.
//
// It is built with ko from this repository (ko://.../functions/blackbox/cluster/receiver)
// and runs as a plain Deployment, so that it never scales to zero and loses its list.
package main

import (
	"cmp"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
)

// maxEvents bounds the memory the list takes; the suite sends a few dozen.
const maxEvents = 10000

// delivery is one event as it arrived.
type delivery struct {
	ID         string            `json:"id"`
	Source     string            `json:"source"`
	Type       string            `json:"type"`
	Subject    string            `json:"subject,omitempty"`
	Time       string            `json:"time,omitempty"`
	Extensions map[string]string `json:"extensions,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`
	Received   time.Time         `json:"received"`
}

type receiver struct {
	log    *slog.Logger
	mu     sync.Mutex
	events []delivery
}

// receive takes one CloudEvent in binary or structured mode and answers 202; a
// request that is no CloudEvent gets 400, which a Broker does not retry.
func (rc *receiver) receive(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	d := delivery{ID: ev.ID(), Source: ev.Source(), Type: ev.Type(), Subject: ev.Subject(),
		Extensions: map[string]string{}, Received: time.Now().UTC()}
	if !ev.Time().IsZero() {
		d.Time = ev.Time().Format(time.RFC3339Nano)
	}
	for k, v := range ev.Extensions() {
		if s, err := types.Format(v); err == nil {
			d.Extensions[k] = s
		}
	}
	if data := ev.Data(); json.Valid(data) {
		d.Data = data
	}
	rc.mu.Lock()
	full := len(rc.events) >= maxEvents
	if !full {
		rc.events = append(rc.events, d)
	}
	rc.mu.Unlock()
	if full {
		// Insufficient storage: the Broker retries, the suite sees the refusals.
		http.Error(w, "the list is full", http.StatusInsufficientStorage)
		return
	}
	rc.log.Info("event", "id", d.ID, "type", d.Type, "source", d.Source)
	w.WriteHeader(http.StatusAccepted)
}

// list answers every delivery so far, oldest first.
func (rc *receiver) list(w http.ResponseWriter, _ *http.Request) {
	rc.mu.Lock()
	out, err := json.Marshal(rc.events)
	rc.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	rc := &receiver{log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", rc.receive)
	mux.HandleFunc("GET /events", rc.list)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{
		Addr:              ":" + cmp.Or(os.Getenv("PORT"), "8080"),
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
	}
	log.Info("listening", "addr", srv.Addr)
	if err := srv.ListenAndServe(); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}
