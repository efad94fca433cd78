package proctest

import (
	"bufio"
	"encoding/json"
	"strings"
)

// ServingAddr is the address in the "serving /healthz, /readyz, /metrics"
// line of a `cgworker run` log (JSON lines), "" before that line is there.
func ServingAddr(log string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && strings.HasPrefix(rec.Msg, "serving /healthz") {
			return rec.Addr
		}
	}
	return ""
}
