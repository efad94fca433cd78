package proctest

import (
	"bytes"
	"sync"
)

// Buffer collects what a program or a component run in the test process
// writes (its log lines, a command's output) while the test reads it: a
// bytes.Buffer is not safe for that.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
