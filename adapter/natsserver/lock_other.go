//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package natsserver

// lockDir is a no-op where flock is not available.
func lockDir(dir string) (release func(), err error) { return func() {}, nil }
