// Command baseline is the least a JetStream-to-API forwarder can do, the
// yardstick of cgworker's performance record (worker/perf), written as most
// people would write it: it binds the durable consumer cgworker-activity of
// CG_EVENTS with Consume and a client buffer of twice CG_CONCURRENCY
// (PullMaxMessages 128 by default), and CG_CONCURRENCY (64) handler
// goroutines send each body unchanged to PUT CG_IMPORTS_URL/activities/
// with a bearer token fetched once at start, then acknowledge on 2xx and
// nak otherwise. No validation, no retries, no tracing, no metrics, no dead
// letters, and no care for a buffered message's ack wait.
//
// Environment: NATS_URL, CG_AUTH_URL, CG_IMPORTS_URL, CG_CLIENT_ID,
// CG_CLIENT_SECRET, CG_CONCURRENCY. It stops on SIGTERM or SIGINT after the
// PUTs in flight.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
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
	// The callback only hands each message over; concurrency handler
	// goroutines, living as long as the process, do the PUTs.
	msgs := make(chan jetstream.Msg)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
			_ = m.Nak()
		}
	}, jetstream.PullMaxMessages(2*concurrency))
	if err != nil {
		return err
	}
	var handlers sync.WaitGroup
	for range concurrency {
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			for m := range msgs {
				if put(client, putURL, auth, m.Data()) {
					_ = m.Ack()
				} else {
					_ = m.Nak()
				}
			}
		}()
	}
	<-ctx.Done()
	cc.Drain() // the callback returns at once: ctx is done
	<-cc.Closed()
	close(msgs)
	handlers.Wait() // the PUTs in flight
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
