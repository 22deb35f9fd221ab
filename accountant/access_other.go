//go:build !unix

package accountant

const (
	accessRead  = 0x4
	accessWrite = 0x2
	accessExec  = 0x1
)

// accessible cannot be told without trying here; the first write says.
func accessible(string, uint32) bool { return true }
