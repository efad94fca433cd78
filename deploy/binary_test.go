package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// binaryFacts is what the drift test needs to know of the cgworker binary.
// It asks the binary itself, built with the Dockerfile's -ldflags, so the
// test needs no access to the command's internals and checks the build
// line too.
type binaryFacts struct {
	bin      string            // the binary
	commands []string          // `cgworker help`
	settings map[string]string // environment variable -> default ("" when none), from `cgworker run -h`
	runFlags map[string]bool   // flag of `cgworker run` -> whether it is boolean
	version  string            // `cgworker version`
}

// Stamped through the Dockerfile's -ldflags; TestDeploy looks for them in
// `cgworker version`.
const (
	stampVersion = "drift-version"
	stampCommit  = "drift-commit"
)

// binDir holds the binary built for the facts; TestMain removes it.
var binDir string

var loadFacts = sync.OnceValues(func() (*binaryFacts, error) {
	ldflags, err := dockerLDFlags(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cgworker-deploy-")
	if err != nil {
		return nil, err
	}
	binDir = dir
	bin := filepath.Join(dir, "cgworker")
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "../cmd/cgworker")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build -ldflags %q: %v\n%s", ldflags, err, out)
	}
	f := &binaryFacts{bin: bin, settings: map[string]string{}, runFlags: map[string]bool{}}

	help, _ := exec.Command(bin, "help").CombinedOutput()
	inCommands := false
	for _, line := range strings.Split(string(help), "\n") {
		switch {
		case strings.HasPrefix(line, "commands:"):
			inCommands = true
		case inCommands && strings.HasPrefix(line, "  "):
			f.commands = append(f.commands, strings.Fields(line)[0])
		case inCommands && strings.TrimSpace(line) == "":
			inCommands = len(f.commands) == 0
		}
	}

	runHelp, _ := exec.Command(bin, "run", "-h").CombinedOutput()
	flagLine := regexp.MustCompile(`^  -(\S+)( \S+)?$`)
	settingDefault := regexp.MustCompile(`\(default \$([A-Z][A-Z0-9_]*)(?: or ([^()]*))?\)\s*$`)
	sc := bufio.NewScanner(strings.NewReader(string(runHelp)))
	flagName := ""
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			flagName = m[1]
			f.runFlags[flagName] = m[2] == ""
			continue
		}
		if m := settingDefault.FindStringSubmatch(sc.Text()); m != nil && flagName != "" {
			f.settings[m[1]] = m[2]
		}
	}

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("cgworker version: %v\n%s", err, out)
	}
	f.version = string(out)
	if len(f.commands) == 0 || len(f.settings) == 0 || len(f.runFlags) == 0 {
		return nil, fmt.Errorf("could not read the commands, settings and flags from `cgworker help` and `cgworker run -h`:\n%s\n%s", help, runHelp)
	}
	return f, nil
})

func facts(t *testing.T) *binaryFacts {
	t.Helper()
	f, err := loadFacts()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// dockerLDFlags is the -ldflags of the Dockerfile's go build, with its
// VERSION and COMMIT build arguments replaced by the stamps.
func dockerLDFlags(dockerfile string) (string, error) {
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		return "", err
	}
	for _, in := range parseDockerfile(string(b)) {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		m := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(in.args)
		if m == nil {
			return "", fmt.Errorf("%s: go build has no -ldflags \"...\"", dockerfile)
		}
		r := strings.NewReplacer("${VERSION}", stampVersion, "$VERSION", stampVersion, "${COMMIT}", stampCommit, "$COMMIT", stampCommit)
		return r.Replace(m[1]), nil
	}
	return "", fmt.Errorf("%s: no RUN with go build", dockerfile)
}
