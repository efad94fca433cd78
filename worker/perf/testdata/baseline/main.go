// Command baseline is the least a JetStream-to-API forwarder can do, the
// yardstick of cgworker's performance record (worker/perf): it binds the
// durable consumer cgworker-activity of CG_EVENTS, keeps at most
// CG_CONCURRENCY (64) PUTs in flight with the same prefetch as cgworker
// (half the concurrency), sends each body unchanged to PUT
// CG_IMPORTS_URL/activities/ with a bearer token fetched once at start, and
// acknowledges on 2xx, naks otherwise. No validation, no retries, no
// tracing, no metrics, no dead letters.
//
// Environment: NATS_URL, CG_AUTH_URL, CG_IMPORTS_URL, CG_CLIENT_ID,
// CG_CLIENT_SECRET, CG_CONCURRENCY. It stops on SIGTERM or SIGINT after the
// PUTs in flight.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	concurrency, err := strconv.Atoi(env("CG_CONCURRENCY", "64"))
	if err != nil || concurrency < 1 {
		return fmt.Errorf("CG_CONCURRENCY: %q is not a positive number", os.Getenv("CG_CONCURRENCY"))
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	token, err := fetchToken(client, env("CG_AUTH_URL", ""), env("CG_CLIENT_ID", "dev"), env("CG_CLIENT_SECRET", "dev"))
	if err != nil {
		return err
	}
	auth := "Bearer " + token
	putURL := env("CG_IMPORTS_URL", "") + "/activities/"

	nc, err := nats.Connect(env("NATS_URL", nats.DefaultURL))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, "CG_EVENTS", "cgworker-activity")
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(max(concurrency/2, 1)))
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, it.Stop)

	sem := make(chan struct{}, concurrency)
	for {
		sem <- struct{}{}
		m, err := it.Next()
		if err != nil {
			<-sem
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			continue
		}
		go func() {
			defer func() { <-sem }()
			if put(client, putURL, auth, m.Data()) {
				_ = m.Ack()
			} else {
				_ = m.Nak()
			}
		}()
	}
	for range concurrency { // wait for the PUTs in flight
		sem <- struct{}{}
	}
	return nc.Drain()
}

// put sends one activity and reports whether the API took it.
func put(client *http.Client, putURL, auth string, body []byte) bool {
	req, err := http.NewRequest(http.MethodPut, putURL, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode/100 == 2
}

func fetchToken(client *http.Client, tokenURL, id, secret string) (string, error) {
	resp, err := client.PostForm(tokenURL, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret},
	})
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token: HTTP %d without an access token", resp.StatusCode)
	}
	return tok.AccessToken, nil
}
