package worker

import (
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/schemas"
)

// job is a message taken into a slot, for a handler goroutine.
type job struct {
	kind schemas.Kind
	msg  jetstream.Msg
}

// dispatch hands a message to an idle handler goroutine, or starts one.
// Handler goroutines live on for the next message rather than exit: a new
// goroutine per message would grow its stack again each time (validation
// and the HTTP client run deep), which cost about 5% of the worker's CPU.
// There are about Concurrency of them (at most twice that, should a slot be
// freed just before its goroutine is back waiting); Run ends them.
func (w *Worker) dispatch(j job, handlers *sync.WaitGroup) {
	select {
	case w.idle <- j:
	default:
		go w.handleLoop(j, handlers)
	}
}

func (w *Worker) handleLoop(j job, handlers *sync.WaitGroup) {
	for ok := true; ok; j, ok = <-w.idle {
		w.handle(j.kind, j.msg)
		w.releaseSlots(1)
		handlers.Done()
	}
}
