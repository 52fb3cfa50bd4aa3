package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/handoffhq/handoff/bench/internal/sysstat"
)

// machine describes the machine for the results file.
func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "?"
	if b, err := exec.Command("uname", "-r").Output(); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		l, _, _ := strings.Cut(string(b), "\n")
		if f := strings.Fields(l); len(f) >= 2 {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				mem = fmt.Sprintf("%.0f GiB", kb/(1<<20))
			}
		}
	}
	return fmt.Sprintf("nproc %d, CPU %q, %s RAM, kernel %s, %s %s/%s",
		runtime.NumCPU(), model, mem, kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// cpuSample is a snapshot of CPU time: the machine's (/proc/stat), this
// process's, the registry server's and all postgres processes'.
type cpuSample struct {
	at            time.Time
	busy, total   uint64 // jiffies
	self, srv, pg time.Duration
}

func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now(), self: sysstat.SelfCPU(), srv: pidCPU(serverPID), pg: commCPU("postgres")}
	s.busy, s.total = sysstat.MachineCPU()
	return s
}

// cpuUse is CPU use between two samples, in cores (CPU-seconds per second).
type cpuUse struct {
	machineBusy     float64 // fraction of all cores
	self, srv, pg   float64 // cores
	srvTime, pgTime time.Duration
	selfTime        time.Duration
}

func cpuBetween(a, b cpuSample) cpuUse {
	sec := b.at.Sub(a.at).Seconds()
	u := cpuUse{srvTime: b.srv - a.srv, pgTime: b.pg - a.pg, selfTime: b.self - a.self}
	if sec > 0 {
		u.self, u.srv, u.pg = u.selfTime.Seconds()/sec, u.srvTime.Seconds()/sec, u.pgTime.Seconds()/sec
	}
	if b.total > a.total {
		u.machineBusy = float64(b.busy-a.busy) / float64(b.total-a.total)
	}
	return u
}

func (u cpuUse) String() string {
	return fmt.Sprintf("machine %.0f%% busy; cores: server %.2f, load generator %.2f, postgres %.2f",
		100*u.machineBusy, u.srv, u.self, u.pg)
}

// statCPU reads utime+stime of a /proc/<pid>/stat file, and the comm.
func statCPU(path string) (string, time.Duration, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return "", 0, false
	}
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 13 {
		return "", 0, false
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return string(b[open+1 : close]), time.Duration(ut+st) * (time.Second / 100), true
}

func pidCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	_, d, _ := statCPU("/proc/" + strconv.Itoa(pid) + "/stat")
	return d
}

// commCPU sums the CPU time of the processes named comm (e.g. the postgres
// backends, which start and end with connections: only live ones count).
func commCPU(comm string) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, e := range ents {
		if c := e.Name()[0]; c < '0' || c > '9' {
			continue
		}
		if name, d, ok := statCPU("/proc/" + e.Name() + "/stat"); ok && name == comm {
			sum += d
		}
	}
	return sum
}
