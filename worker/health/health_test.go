package health

import (
	"strings"
	"testing"
)

// TestReadyNamesEachUnboundConsumer: a consumer found gone keeps the
// replica unready, by name, until it is bound again, whatever the other
// consumers do.
func TestReadyNamesEachUnboundConsumer(t *testing.T) {
	t.Parallel()
	h := New(true, false)
	if err := h.Ready(); err == nil || err.Error() != "consumers not bound" {
		t.Fatalf("before start-up binds them: %v", err)
	}
	h.SetConsumers(true)
	h.SetConsumer("cgworker-activity", true) // a pull, nothing to clear
	if err := h.Ready(); err != nil {
		t.Fatalf("bound: %v", err)
	}
	h.SetConsumer("cgworker-account", false)
	h.SetConsumer("cgworker-contact", false)
	h.SetConsumer("cgworker-activity", true) // another kind's pull succeeds
	err := h.Ready()
	if err == nil || !strings.Contains(err.Error(), "cgworker-account, cgworker-contact") {
		t.Fatalf("two consumers gone: %v", err)
	}
	h.SetConsumer("cgworker-account", true)
	if err := h.Ready(); err == nil || !strings.Contains(err.Error(), "cgworker-contact") || strings.Contains(err.Error(), "account") {
		t.Fatalf("one bound again: %v", err)
	}
	h.SetConsumer("cgworker-contact", true)
	if err := h.Ready(); err != nil {
		t.Fatalf("all bound again: %v", err)
	}
	var none *Health
	none.SetConsumer("cgworker-activity", false)
	if err := none.Ready(); err != nil {
		t.Errorf("nil health: %v", err)
	}
}
