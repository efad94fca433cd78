package queue

import (
	"slices"
	"testing"
)

// TestPartitionUnknown: a subject with a consumer of its own keeps it
// whatever the cap; the others get one, in order, while the cap allows, and
// the rest share one.
func TestPartitionUnknown(t *testing.T) {
	t.Parallel()
	subjects := []string{"cg.events.a", "cg.events.b", "cg.events.c", "cg.events.d"}
	for _, tt := range []struct {
		name         string
		own          map[string]bool
		most         int
		mine, shared []string
	}{
		{"room for all", nil, 16, subjects, nil},
		{"cap reached in order", nil, 2, subjects[:2], subjects[2:]},
		{"own kept first", map[string]bool{"cg.events.d": true}, 2, []string{"cg.events.a", "cg.events.d"}, []string{"cg.events.b", "cg.events.c"}},
		{"own kept past the cap", map[string]bool{"cg.events.c": true, "cg.events.d": true}, 1, subjects[2:], subjects[:2]},
		{"own gone from the stream", map[string]bool{"cg.events.x": true}, 2, subjects[:2], subjects[2:]},
	} {
		mine, shared := partitionUnknown(subjects, tt.own, tt.most)
		if !slices.Equal(mine, tt.mine) || !slices.Equal(shared, tt.shared) {
			t.Errorf("%s: own %v, shared %v; want %v, %v", tt.name, mine, shared, tt.mine, tt.shared)
		}
	}
}
