package schemas

import (
	"testing"
	"time"
)

func TestNormalizeHappenedAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "" means invalid
	}{
		{"2019-10-06", "2019-10-06 00:00:00"},
		{"06-10-2019", "2019-10-06 00:00:00"},
		{"2019-10-06 10:00:00", "2019-10-06 10:00:00"},
		{"2019-03-06 10:00:00 +0530", "2019-03-06 04:30:00"},
		{"2019-03-06 10:00:00+0530", "2019-03-06 04:30:00"},
		{"2019-03-06 10:00:00 +05:30", "2019-03-06 04:30:00"},
		{"2019-03-06 10:00:00+05:30", "2019-03-06 04:30:00"},
		{"2019-03-06 02:00:00 -0500", "2019-03-06 07:00:00"},
		{"2019-03-06 01:00:00 +0530", "2019-03-05 19:30:00"},
		{"2019-12-31 23:30:00 -01:00", "2020-01-01 00:30:00"},
		{"2019-03-06 10:00:00Z", "2019-03-06 10:00:00"},
		{"2019-03-06 10:00:00.999", "2019-03-06 10:00:00"},
		{"2019-03-06 10:00:00.5 +0100", "2019-03-06 09:00:00"},
		{"2019-10-06T10:00:00Z", "2019-10-06 10:00:00"},
		{"2019-10-06t10:00:00z", "2019-10-06 10:00:00"},
		{"2019-10-06T10:00:00+02:00", "2019-10-06 08:00:00"},
		{"2019-10-06T10:00:00.999999999-02:00", "2019-10-06 12:00:00"},
		{"2020-02-29", "2020-02-29 00:00:00"},
		{"29-02-2000", "2000-02-29 00:00:00"},
		{"1000-01-01", "1000-01-01 00:00:00"},
		{"9999-12-31 23:59:59", "9999-12-31 23:59:59"},

		{"", ""},
		{"2019-02-29", ""},
		{"1900-02-29", ""},
		{"2019-02-30", ""},
		{"2019-04-31", ""},
		{"2019-00-10", ""},
		{"2019-10-00", ""},
		{"2019/10/06", ""},
		{"06-13-2019", ""},
		{"20191006", ""},
		{"2019-10-6", ""},
		{"6-10-2019", ""},
		{"+019-10-06", ""},
		{"2019-10-06 10:00", ""},
		{"2019-10-06 1:00:00", ""},
		{"2019-10-06 24:00:00", ""},
		{"2019-10-06 10:60:00", ""},
		{"2019-10-06 10:00:60", ""},
		{"2019-10-06_10:00:00", ""},
		{"2019-10-06 10:00:00 ", ""},
		{"2019-10-06 10:00:00  +0530", ""},
		{"2019-10-06 10:00:00 +053", ""},
		{"2019-10-06 10:00:00 +2400", ""},
		{"2019-10-06 10:00:00 +0560", ""},
		{"2019-10-06 10:00:00.", ""},
		{"2019-10-06 10:00:00.x", ""},
		{"2019-10-06T10:00:00", ""},
		{"2019-10-06T10:00:00+0200", ""},
		{"2019-10-06T10:00:00 +02:00", ""},
		{" 2019-10-06", ""},
		{"0999-12-31", ""},
		{"1000-01-01 00:30:00 +0100", ""},
		{"9999-12-31T23:59:59-01:00", ""},
		{"２０１９-10-06", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeHappenedAt(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("NormalizeHappenedAt(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeHappenedAt(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			// The normal form is itself accepted and a fixed point.
			if again, err := NormalizeHappenedAt(got); err != nil || again != got {
				t.Errorf("NormalizeHappenedAt(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestFormatHappenedAt(t *testing.T) {
	t.Parallel()
	ist := time.FixedZone("IST", 5*3600+1800)
	got := FormatHappenedAt(time.Date(2019, 3, 6, 10, 0, 0, 999, ist))
	if got != "2019-03-06 04:30:00" {
		t.Errorf("FormatHappenedAt = %q", got)
	}
}

// A value already in the API's form is returned as it is, without a copy:
// one allocation less per event on the worker's path.
// Not parallel: AllocsPerRun refuses to run in a parallel test.
func TestNormalizeHappenedAtKeepsNormalForm(t *testing.T) {
	in := "2019-10-06 22:34:45"
	allocs := testing.AllocsPerRun(100, func() {
		if got, err := NormalizeHappenedAt(in); err != nil || got != in {
			t.Fatalf("NormalizeHappenedAt(%q) = %q, %v", in, got, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations normalising a normal value, want 0", allocs)
	}
}
