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
	run := 0
	for b.Loop() {
		// A new source each time, so the message ids are new too.
		run++
		c, err := queue.PublishStream(ctx, js, queue.StreamInput{Subject: "cg.events.activity", Source: fmt.Sprint("bench-", run)}, bytes.NewReader(in.Bytes()))
		if err != nil || c.Published != 1000 {
			b.Fatal(c, err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "msgs/s")
}
