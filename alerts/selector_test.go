package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var selectors = map[string]bool{
	`job="cometchat"`:                  true,
	`job="calls", env="prod"`:          true,
	`job=~"cometchat.*",env!="dev"`:    true,
	`job="calls",`:                     false, // the rules add matchers after it
	`job='calls'`:                      true,
	"job=`calls`":                      true,
	`job="a\"b"`:                       true,
	`team!~"x|y", job="c"`:             true,
	`job=calls`:                        false, // not quoted
	``:                                 false,
	`{job="calls"}`:                    false, // braces are the rules'
	`job="calls" env="prod"`:           false, // no comma
	`job=="calls"`:                     false,
	`job="calls`:                       false,
	`job=~"("`:                         false, // bad regex
	`job=~".*"`:                        true,  // each rule names its metric
	`job!="cometchat"`:                 true,
	`job=""`:                           true,
	`__name__="up"`:                    false, // the rules set it
	`job="calls", 1env="x"`:            false,
	`job="calls", env="prod", x=~".+"`: true,
}

func TestCheckSelector(t *testing.T) {
	for sel, ok := range selectors {
		err := CheckSelector(sel)
		assert.Equal(t, ok, err == nil, "%q: %v", sel, err)
	}
}

// CheckSelector says what Prometheus says: promtool checks the rules
// rendered for each selector that CheckSelector accepts, and refuses them
// for each selector it refuses.
func TestCheckSelectorAgreesWithPromtool(t *testing.T) {
	dir := t.TempDir()
	for sel, ok := range selectors {
		if sel == `__name__="up"` {
			continue // valid PromQL; refused so the rules keep their names
		}
		f := filepath.Join(dir, "rules.yml")
		b, err := Render(Header(sel), RecordingRules(sel))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f, b, 0o644))
		out, err := exec.Command(promtool(t), "check", "rules", f).CombinedOutput()
		assert.Equal(t, ok, err == nil, "%q: promtool says %s", sel, out)
	}
}

// The generator refuses a bad selector with a message and exit 2, writes
// nothing then, and creates -out when it is missing.
func TestGen(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "gen")
	build := exec.Command("go", "build", "-o", bin, "./gen")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	dir := filepath.Join(t.TempDir(), "new", "rules")
	cmd := exec.Command(bin, "-selector", "job=calls", "-out", dir)
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 2, exit.ExitCode())
	assert.Equal(t, `gen: -selector: selector "job=calls": label job: want a quoted value, got "calls" (want label matchers such as job="cometchat")`+"\n", string(out))
	assert.NoDirExists(t, dir, "nothing written")

	out, err = exec.Command(bin, "-selector", `job="calls"`, "-out", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for name := range Files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.True(t, strings.Contains(string(b), `job="calls"`), name)
	}
	out, err = exec.Command(promtool(t), "check", "rules", filepath.Join(dir, "cometchat.rules.yml"), filepath.Join(dir, "cometchat.alerts.yml")).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
