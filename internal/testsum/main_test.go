package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

const run = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"run","Package":"p","Test":"TestTool"}
{"Action":"output","Package":"p","Test":"TestTool","Output":"    x_test.go:25: promtool not on PATH\n"}
{"Action":"output","Package":"p","Test":"TestTool","Output":"--- SKIP: TestTool (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestTool"}
{"Action":"run","Package":"p","Test":"TestFull"}
{"Action":"output","Package":"p","Test":"TestFull","Output":"    edges_test.go:92: no /dev/full on this system\n"}
{"Action":"skip","Package":"p","Test":"TestFull"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}
`

func TestSummarize(t *testing.T) {
	var out strings.Builder
	assert.True(t, summarize(strings.NewReader(run), &out, false, []string{"no /dev/full on this system"}), "outside CI a skip is reported only")
	assert.Contains(t, out.String(), "ok  \tp\t0.1s\n")
	assert.Contains(t, out.String(), "1 tests passed, 0 failed, 2 skipped\n")
	assert.Contains(t, out.String(), "  skipped p TestTool: promtool not on PATH\n")
	assert.NotContains(t, out.String(), "=== RUN")

	out.Reset()
	assert.False(t, summarize(strings.NewReader(run), &out, true, []string{"no /dev/full on this system"}), "under CI a missing tool fails the run")
	assert.Contains(t, out.String(), "  skipped p TestTool: promtool not on PATH  (not allowed under CI=true)\n")
	assert.Contains(t, out.String(), "  skipped p TestFull: no /dev/full on this system\n")

	failed := strings.Replace(run, `{"Action":"pass","Package":"p","Test":"TestA"}`,
		`{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:3: boom\n"}
{"Action":"fail","Package":"p","Test":"TestA"}`, 1)
	out.Reset()
	assert.False(t, summarize(strings.NewReader(failed), &out, false, nil))
	assert.Contains(t, out.String(), "a_test.go:3: boom", "a failed test's output is shown")
}

// A package that does not build shows the compiler's message and fails.
func TestSummarizeBuildFailure(t *testing.T) {
	in := `{"ImportPath":"bf [bf.test]","Action":"build-output","Output":"./bf.go:3:12: undefined: x\n"}
{"ImportPath":"bf [bf.test]","Action":"build-fail"}
{"Action":"output","Package":"bf","Output":"FAIL\tbf [build failed]\n"}
{"Action":"fail","Package":"bf","Elapsed":0,"FailedBuild":"bf [bf.test]"}
`
	var out strings.Builder
	assert.False(t, summarize(strings.NewReader(in), &out, false, nil))
	assert.Contains(t, out.String(), "./bf.go:3:12: undefined: x")
	assert.Contains(t, out.String(), "FAIL\tbf [build failed]")
}
