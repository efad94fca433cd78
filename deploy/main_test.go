// Package deploy holds only tests: the drift test, which checks the files
// of this folder (Dockerfile, compose, Kubernetes manifests, the Grafana
// dashboard and the Prometheus rules) against the binary they run, so that
// renaming a setting, a command, a flag, a probe path, a stream or a metric
// fails here rather than in someone's cluster.
package deploy

import (
	"os"
	"testing"

	"github.com/cgworker/cgworker/worker/proctest"
)

func TestMain(m *testing.M) {
	code := proctest.Run(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}
