package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/worker/responses"
)

// Sync is the responses sync's stored state.
type Sync struct {
	responses.State
	// Stale is set when the last success is older than twice the interval.
	Stale bool `json:"stale"`
}

func readSync(ctx context.Context, js jetstream.JetStream, cfg Config, r *Report) error {
	kv, err := js.KeyValue(ctx, cfg.Names.SyncBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		r.Missing = append(r.Missing, "bucket "+cfg.Names.SyncBucket())
		if cfg.SyncInterval > 0 {
			r.attention("sync bucket %s does not exist: no replica has run the sync", cfg.Names.SyncBucket())
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("bucket %s: %w", cfg.Names.SyncBucket(), err)
	}
	st, err := responses.Status(ctx, kv)
	if err != nil {
		return err
	}
	s := &Sync{State: st}
	r.Sync = s
	if cfg.SyncInterval <= 0 {
		return nil
	}
	limit := 2 * cfg.SyncInterval
	switch age := cfg.Now().Sub(st.LastSuccess); {
	case st.LastSuccess.IsZero():
		s.Stale = true
		r.attention("sync: no successful pass recorded%s", lastError(st))
	case age > limit:
		s.Stale = true
		r.attention("sync: last success %s ago, over twice CG_SYNC_INTERVAL (%s)%s", age.Round(time.Second), limit, lastError(st))
	}
	return nil
}

func lastError(st responses.State) string {
	if st.LastError == "" {
		return ""
	}
	return "; last error at " + st.LastErrorAt.UTC().Format(time.RFC3339) + ": " + st.LastError
}
