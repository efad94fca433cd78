package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
)

// benchClient keeps enough idle connections for parallel benchmarks, as
// the worker's client does.
func benchClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: tr}
}

func benchToken(b *testing.B, c *http.Client, base string) string {
	b.Helper()
	resp, err := c.PostForm(base+TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {"dev"}, "client_secret": {"dev"}})
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		b.Fatal(err)
	}
	return tok.AccessToken
}

// BenchmarkPutActivity measures PUT /activities/ over loopback HTTP, client
// included, as the worker benchmark drives it.
func BenchmarkPutActivity(b *testing.B) {
	srv := newTestServer(b, Options{NoRequestLog: true, DiscardBodies: true})
	client := benchClient()
	auth := "Bearer " + benchToken(b, client, srv.URL)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := fmt.Appendf(nil, `{"account":"ACME Industries","type":"Support Ticket","source":"Freshdesk",`+
				`"reference":"bench-%d","contact":"john.doe@example.com","happened_at":"2019-10-06 22:34:45",`+
				`"additional_information_object":{"subject":"Printer on fire","priority":3}}`, n.Add(1))
			req, _ := http.NewRequest(http.MethodPut, srv.URL+ActivitiesPath, bytes.NewReader(body))
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("HTTP %d", resp.StatusCode)
			}
		}
	})
}

// BenchmarkActivityHandler measures the handler alone, without the network.
func BenchmarkActivityHandler(b *testing.B) {
	e := New(Options{NoRequestLog: true, DiscardBodies: true})
	token, _ := e.auth.issue()
	body := []byte(`{"account":"ACME Industries","type":"Support Ticket","source":"Freshdesk",` +
		`"reference":"bench","contact":"john.doe@example.com","happened_at":"2019-10-06 22:34:45",` +
		`"additional_information_object":{"subject":"Printer on fire","priority":3}}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := discardWriter{h: make(http.Header)}
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPut, "/activities/", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			clear(w.h)
			e.ServeHTTP(w, req)
		}
	})
}

type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w discardWriter) WriteHeader(int)             {}

// BenchmarkSyncPage measures one full page of 1000 responses with every
// expansion.
func BenchmarkSyncPage(b *testing.B) {
	e := New(Options{NoRequestLog: true, Responses: 1000})
	token, _ := e.auth.issue()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, SyncPath+"?per_page=1000&with[]=tags&with[]=questions&with[]=selected_drivers&with[]=properties", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		e.ServeHTTP(discardWriter{h: make(http.Header)}, req)
	}
}
