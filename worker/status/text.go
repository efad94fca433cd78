package status

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteText writes the report for people: the consumers, the dead letters
// and the sync as tables, then one line per item that needs attention.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tCONSUMER\tPENDING\tACK-PENDING\tREDELIVERED\tOLDEST-PENDING")
	for _, c := range r.Consumers {
		if c.Missing {
			fmt.Fprintf(tw, "%s\t%s\tmissing\t\t\t%d waiting in %s\n", c.Kind, c.Name, c.Waiting, c.Stream)
			continue
		}
		oldest := "-"
		if !c.OldestPending.IsZero() {
			oldest = (time.Duration(c.OldestPendingAge) * time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", c.Kind, c.Name, c.Pending, c.AckPending, c.Redelivered, oldest)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "DEAD LETTERS\tERROR-KIND\tCOUNT\tRECENT\tNEWEST\n")
	for _, g := range r.DeadLetters.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", g.Kind, g.ErrorKind, g.Count, g.Recent, stamp(g.Newest))
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%s\n", r.DeadLetters.Total, r.DeadLetters.Recent, stamp(r.DeadLetters.Newest))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if s := r.Sync; s != nil {
		cursor := s.Cursor
		if cursor == "" {
			cursor = "(none)"
		}
		holder := s.LeaseHolder
		if holder == "" {
			holder = "(none)"
		}
		fmt.Fprintf(w, "sync: cursor %s, last success %s, lease holder %s\n", cursor, stamp(s.LastSuccess), holder)
		if s.LastError != "" {
			fmt.Fprintf(w, "sync: last error at %s: %s\n", stamp(s.LastErrorAt), s.LastError)
		}
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "missing: %s\n", m)
	}
	if r.Healthy() {
		_, err := fmt.Fprintln(w, "healthy: nothing needs attention")
		return err
	}
	for _, a := range r.Attention {
		fmt.Fprintf(w, "ATTENTION: %s\n", a)
	}
	return nil
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
