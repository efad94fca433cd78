package deadletter_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
)

func BenchmarkBuild(b *testing.B) {
	names := queue.NewNames("")
	header := nats.Header{"Nats-Msg-Id": {"p-1"}, "traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "CG-Configuration": {"c"}}
	meta := &jetstream.MsgMetadata{Stream: "CG_EVENTS", Sequence: jetstream.SequencePair{Stream: 9}, NumDelivered: 1, Timestamp: time.Now()}
	body := []byte(strings.Repeat("x", 2048))
	info := deadletter.Info{Kind: "activity", ErrorKind: "schema", Error: "The type field is required.",
		Errors: map[string][]string{"type": {"The type field is required."}, "account": {"The account field is required."}}}
	for b.Loop() {
		deadletter.Build(names, "cg.events.activity", header, body, meta, info)
	}
}

func BenchmarkEncodeErrorsTruncated(b *testing.B) {
	errs := map[string][]string{}
	for i := range 500 {
		errs[fmt.Sprintf("field_%d", i)] = []string{"The field is invalid and this message is fairly long too."}
	}
	for b.Loop() {
		deadletter.EncodeErrors(errs, deadletter.MaxErrorsBytes)
	}
}
