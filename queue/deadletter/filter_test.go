package deadletter_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cgworker/cgworker/queue/deadletter"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		kind, errKind, since, seq string
		want                      deadletter.Filter
		err                       string
	}{
		{want: deadletter.Filter{}},
		{kind: "activity", errKind: "api-4xx", want: deadletter.Filter{Kind: "activity", ErrorKind: "api-4xx"}},
		{kind: "unknown", errKind: "unknown-subject", want: deadletter.Filter{Kind: "unknown", ErrorKind: "unknown-subject"}},
		{since: "24h", want: deadletter.Filter{Since: now.Add(-24 * time.Hour)}},
		{since: "2024-05-01T08:00:00+02:00", want: deadletter.Filter{Since: time.Date(2024, 5, 1, 6, 0, 0, 0, time.UTC)}},
		{seq: "7", want: deadletter.Filter{SeqFrom: 7, SeqTo: 7}},
		{seq: "7-12", want: deadletter.Filter{SeqFrom: 7, SeqTo: 12}},
		{kind: "order", err: "--kind: "},
		{errKind: "api-500", err: "--error-kind: "},
		{since: "yesterday", err: "--since: "},
		{since: "-1h", err: "--since: "},
		{seq: "x", err: "--seq: "},
		{seq: "0", err: "--seq: "},
		{seq: "5-", err: "--seq: "},
		{seq: "9-3", err: "--seq: "},
	} {
		got, err := deadletter.ParseFilter(tc.kind, tc.errKind, tc.since, tc.seq, now)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Errorf("%+v: err = %v, want prefix %q", tc, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		if got.Kind != tc.want.Kind || got.ErrorKind != tc.want.ErrorKind || !got.Since.Equal(tc.want.Since) ||
			got.SeqFrom != tc.want.SeqFrom || got.SeqTo != tc.want.SeqTo {
			t.Errorf("%+v: got %+v", tc, got)
		}
	}
}
