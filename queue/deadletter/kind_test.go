package deadletter_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/schemas"
)

// Letters of earlier versions (acme.dlq.<kind>) and this version's
// (acme.dlq.<kind>.<letter id>) are listed, filtered by --kind and
// replayed alike; the kind comes from the token after acme.dlq., never the
// last token. A letter whose two kinds disagree is refused and kept.
func TestOldAndNewLettersReadAlike(t *testing.T) {
	t.Parallel()
	f := setup(t)
	newSeq := f.deadLetter(t, schemas.Activity, `{}`, nil, deadletter.Info{ErrorKind: "schema", Error: "x"})
	oldHeader := nats.Header{"CG-Original-Subject": {"acme.events.activity"}, "CG-Error-Kind": {"schema"}}
	old, err := f.js.PublishMsg(f.ctx, &nats.Msg{Subject: "acme.dlq.activity", Header: oldHeader, Data: []byte(`{"old":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	// An earlier contact letter, and one whose kinds disagree.
	if _, err := f.js.PublishMsg(f.ctx, &nats.Msg{Subject: "acme.dlq.contact", Header: nats.Header{"CG-Original-Subject": {"acme.events.contact"}}, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	bad, err := f.js.PublishMsg(f.ctx, &nats.Msg{Subject: "acme.dlq.account.ACME_EVENTS-9-9", Header: nats.Header{"CG-Original-Subject": {"acme.events.activity"}}, Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}

	if got := listSeqs(t, f, deadletter.Filter{Kind: "activity"}); len(got) != 2 || got[0] != newSeq || got[1] != old.Sequence {
		t.Errorf("--kind activity lists %v, want [%d %d]", got, newSeq, old.Sequence)
	}
	var out bytes.Buffer
	if _, err := deadletter.List(f.ctx, f.js, f.names, deadletter.Filter{SeqFrom: newSeq, SeqTo: newSeq}, &out, true); err != nil || !strings.Contains(out.String(), `"kind":"activity"`) {
		t.Errorf("kind of a new letter: %v %s", err, out.String())
	}

	out.Reset()
	n, err := deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{Kind: "activity"}, deadletter.ReplayOptions{}, &out)
	if err != nil || n != 2 {
		t.Fatalf("replay --kind activity = %d, %v: %s", n, err, out.String())
	}
	out.Reset()
	n, err = deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{Kind: "account"}, deadletter.ReplayOptions{}, &out)
	if err == nil || n != 0 || !strings.Contains(out.String(), "kinds disagree: its subject acme.dlq.account.ACME_EVENTS-9-9 says account but CG-Original-Subject \"acme.events.activity\" says activity") {
		t.Errorf("replay of disagreeing kinds = %d, %v: %s", n, err, out.String())
	}
	if got := listSeqs(t, f, deadletter.Filter{}); len(got) != 2 || got[1] != bad.Sequence {
		t.Errorf("left %v, want the contact letter and %d", got, bad.Sequence)
	}
}
