// Package sysstat reads the CPU and load figures the bench programs record
// next to their results (Linux /proc and getrusage).
package sysstat

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MachineCPU returns the machine's busy and total jiffies from /proc/stat
// (idle and iowait are not busy); zeros if it cannot be read.
func MachineCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, 0
	}
	for i, v := range f[1:] {
		x, _ := strconv.ParseUint(v, 10, 64)
		total += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, total
}

// SelfCPU is the CPU time (user + system) this process has used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAvg returns the 1, 5 and 15 minute load averages, or "?".
func LoadAvg() []string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return []string{"?", "?", "?"}
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return []string{"?", "?", "?"}
	}
	return f[:3]
}
