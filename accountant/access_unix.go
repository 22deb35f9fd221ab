//go:build unix

package accountant

import "syscall"

const (
	accessRead  = 0x4
	accessWrite = 0x2
	accessExec  = 0x1
)

// accessible reports whether this process may use path in the ways of
// mode (access(2), which also sees a read-only file system), without
// creating or opening anything.
func accessible(path string, mode uint32) bool {
	return syscall.Access(path, mode) == nil
}
