package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
)

func BenchmarkNewServer(b *testing.B) {
	for b.Loop() {
		natstest.NewServer(b).Stop()
	}
}

// BenchmarkPublishStream publishes 1,000 NDJSON events per iteration.
func BenchmarkPublishStream(b *testing.B) {
	srv := natstest.NewServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)
	nc, err := queue.Connect(ctx, queue.ConnConfig{URL: srv.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if err := queue.EnsureStreams(ctx, js, queue.StreamConfig{Names: queue.NewNames("")}); err != nil {
		b.Fatal(err)
	}
	var in bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&in, `{"type":"purchase","account":"ACME","contact":"joe@example.com","reference":"r-%d"}`+"\n", i)
	}
	b.SetBytes(int64(in.Len()))
	b.ResetTimer()
	for b.Loop() {
		n, err := queue.PublishStream(ctx, js, "cg.events.activity", bytes.NewReader(in.Bytes()), nil)
		if err != nil || n != 1000 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "msgs/s")
}
