// Command baseline is the smallest Go HTTP function that does the functions' job on
// the same Redis: the yardstick of cqrs-bench. It does the same work in Redis as the
// functions, through the same store package and client settings, and nothing else:
// no strict decoding or validation, no metrics, no logging, no deadlines, no
// consistency headers.
//
//   - POST /records: one JSON decode, then the store's create script (claim check,
//     seq, document, indexes, in one step) on the master; the answer is the stored
//     document with its token, 201.
//   - GET /records: the store's page script on the replica, the 25 newest; the answer
//     is the documents as they came, with the cursor and the token.
//   - GET /records/stored: one GET, on the replica, of a page stored whole under
//     PAGE_KEY: what a page would cost if pages were kept ready-made.
//
// With SINK=1 it is instead the outbox's sink: every POST is read and answered 202.
//
// Environment: PORT, REDIS_ADDR (master), REDIS_REPLICA_ADDR, PAGE_KEY, SINK.
package main

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, r *http.Request) {})
	if os.Getenv("SINK") == "1" {
		mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
		})
	} else {
		routes(mux)
	}
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		os.Stderr.WriteString("baseline: " + err.Error() + "\n")
		os.Exit(1)
	}
}

var tags = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

func routes(mux *http.ServeMux) {
	master := store.New(store.NewClient(store.Options{Addr: os.Getenv("REDIS_ADDR")}))
	replicaClient := store.NewClient(store.Options{Addr: os.Getenv("REDIS_REPLICA_ADDR")})
	replica := store.New(replicaClient)
	pageKey := os.Getenv("PAGE_KEY")

	mux.HandleFunc("POST /records", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		var in struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err == nil {
			err = json.Unmarshal(body, &in)
		}
		if err != nil || in.Type == "" || in.Text == "" {
			http.Error(w, "bad record", http.StatusBadRequest)
			return
		}
		// The random part of the id, as the write function makes it.
		var b [5]byte
		rand.Read(b[:])
		c, err := master.Create(r.Context(), store.NewRecord{Tag: tags.EncodeToString(b[:]), Type: in.Type, Text: in.Text}, 0, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		out := append(c.Doc[:len(c.Doc)-1:len(c.Doc)-1], `,"token":"`...)
		out = append(append(out, store.Token{c.At}.String()...), "\"}\n"...)
		answer(w, http.StatusCreated, out)
	})
	mux.HandleFunc("GET /records", func(w http.ResponseWriter, r *http.Request) {
		p, err := replica.PageDocs(r.Context(), store.Query{Limit: 25}, store.Need{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		n := 64
		for _, d := range p.Docs {
			n += len(d) + 1
		}
		out := append(make([]byte, 0, n), `{"records":[`...)
		for i, d := range p.Docs {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, d...)
		}
		out = append(out, ']')
		if p.Next != nil {
			out = append(append(append(out, `,"nextCursor":"`...), p.Next.String()...), '"')
		}
		out = append(append(append(out, `,"token":"`...), p.At.String()...), "\"}\n"...)
		answer(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /records/stored", func(w http.ResponseWriter, r *http.Request) {
		page, err := replicaClient.Get(r.Context(), pageKey).Bytes()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		answer(w, http.StatusOK, page)
	})
}

// answer writes body with its length, so that a page larger than the server's 4 KiB
// buffer goes out in one piece rather than chunked, as the functions send it.
func answer(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
