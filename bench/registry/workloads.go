package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// backend is one database with its registry server process.
type backend struct {
	name    string // postgres or sqlite
	db      string // the server's --db
	cfg     config
	bin     string
	tmp     string
	srv     *server
	ids     []int    // schema ids the reads use
	paths   []string // /schemas/ids/{id} of ids
	cleanup func()
}

func (b *backend) start() error {
	srv, err := startServer(b.bin, b.db, filepath.Join(b.tmp, b.name+"-server.log"))
	if err != nil {
		return err
	}
	b.srv = srv
	return nil
}

func (b *backend) restart() error {
	if err := b.srv.stop(); err != nil {
		return err
	}
	return b.start()
}

// roundResult is one round on one backend.
type roundResult struct {
	reads      loadResult
	wrk        *wrkResult
	own, one   loadResult
	ownSubj    int           // subjects the own-subject clients used
	transSetup time.Duration // registering the 100 versions, one after another
	cold       time.Duration // first check after a server restart
	checks     []time.Duration
	regs       []time.Duration // registering version 101
	rssKB      int
}

// setupReads registers the schemas the read workload fetches: one per
// subject, each a distinct variant of the order record.
func (b *backend) setupReads(ctx context.Context) error {
	c := newClient(b.srv.url, 4)
	defer c.close()
	for i := range b.cfg.ids {
		var out struct{ ID int }
		body := schemaReq{orderSchema(optionalField(fmt.Sprintf("variant_%d", i), i))}
		if err := c.json(ctx, "POST", fmt.Sprintf("/subjects/read-%d/versions", i), body, &out); err != nil {
			return fmt.Errorf("register read schema %d: %w", i, err)
		}
		b.ids = append(b.ids, out.ID)
		b.paths = append(b.paths, "/schemas/ids/"+strconv.Itoa(out.ID))
	}
	// Each id answers with the schema registered under it.
	for i, p := range b.paths {
		var got schemaReq
		if err := c.json(ctx, "GET", p, nil, &got); err != nil {
			return err
		}
		if !strings.Contains(got.Schema, fmt.Sprintf(`"variant_%d"`, i)) {
			return fmt.Errorf("GET %s answered another schema: %.100s", p, got.Schema)
		}
	}
	return nil
}

// reads: GET /schemas/ids/{id} over the registered ids, closed loop.
func (b *backend) reads(ctx context.Context) loadResult {
	c := newClient(b.srv.url, b.cfg.conns)
	defer c.close()
	n := int64(len(b.paths))
	return closedLoop(ctx, b.cfg.conns, b.cfg.warm, b.cfg.dur, b.srv.pid, func(ctx context.Context, w int, seq int64) error {
		_, err := c.do(ctx, "GET", b.paths[seq%n], nil)
		return err
	})
}

// register posts a new version of the order record with one distinct
// optional field (BACKWARD-compatible with any other such version: the
// reader fills the missing field with its default and skips the unknown one).
func register(ctx context.Context, c *client, subject string, seq int64) error {
	body, err := json.Marshal(schemaReq{orderSchema(optionalField(fmt.Sprintf("f_%d", seq), int(seq)))})
	if err != nil {
		return err
	}
	b, err := c.do(ctx, "POST", "/subjects/"+subject+"/versions", body)
	if err != nil {
		return err
	}
	var out struct{ ID int }
	if err := json.Unmarshal(b, &out); err != nil || out.ID <= 0 {
		return fmt.Errorf("register %s: unexpected answer %q", subject, b)
	}
	return nil
}

// regsOwn: each client registers into its own subject (a new subject after
// perSubject versions, so subjects stay at a realistic size).
func (b *backend) regsOwn(ctx context.Context, round int) (loadResult, int) {
	c := newClient(b.srv.url, b.cfg.regConns)
	defer c.close()
	counts := make([]int, b.cfg.regConns)
	r := closedLoop(ctx, b.cfg.regConns, b.cfg.warm, b.cfg.dur, b.srv.pid, func(ctx context.Context, w int, seq int64) error {
		subject := fmt.Sprintf("own-r%d-c%d-s%d", round, w, counts[w]/b.cfg.perSubject)
		counts[w]++
		return register(ctx, c, subject, seq)
	})
	subjects := 0
	for _, n := range counts {
		subjects += (n + b.cfg.perSubject - 1) / b.cfg.perSubject
	}
	return r, subjects
}

// regsOne: all clients register into one subject (a new one every
// perSubject registrations), so the subject lock serialises them.
func (b *backend) regsOne(ctx context.Context, round int) loadResult {
	c := newClient(b.srv.url, b.cfg.regConns)
	defer c.close()
	return closedLoop(ctx, b.cfg.regConns, b.cfg.warm, b.cfg.dur, b.srv.pid, func(ctx context.Context, w int, seq int64) error {
		return register(ctx, c, fmt.Sprintf("one-r%d-s%d", round, seq/int64(b.cfg.perSubject)), seq)
	})
}

// transitive: a FULL_TRANSITIVE subject with cfg.versions versions, each
// adding one optional field; then the compatibility check of a new version
// against all of them, and its registration (deleted again after each run so
// that every run checks against the same versions).
func (b *backend) transitive(ctx context.Context, round int, r *roundResult) error {
	c := newClient(b.srv.url, 1)
	defer c.close()
	subject := fmt.Sprintf("trans-r%d", round)
	if err := c.json(ctx, "PUT", "/config/"+subject, map[string]string{"compatibility": "FULL_TRANSITIVE"}, nil); err != nil {
		return err
	}
	n := b.cfg.versions
	t0 := time.Now()
	for v := 1; v <= n; v++ {
		if err := c.json(ctx, "POST", "/subjects/"+subject+"/versions", schemaReq{transitiveVersion(v)}, nil); err != nil {
			return fmt.Errorf("register version %d: %w", v, err)
		}
	}
	r.transSetup = time.Since(t0)
	var versions []int
	if err := c.json(ctx, "GET", "/subjects/"+subject+"/versions", nil, &versions); err != nil {
		return err
	}
	if len(versions) != n {
		return fmt.Errorf("%s has %d versions, want %d", subject, len(versions), n)
	}
	// Each candidate is the last version plus one distinct optional field.
	candidate := func(i int) schemaReq {
		return schemaReq{transitiveVersion(n, optionalField(fmt.Sprintf("probe_%d", i), n))}
	}
	check := func(i int) (time.Duration, error) {
		var out struct {
			IsCompatible bool     `json:"is_compatible"`
			Messages     []string `json:"messages"`
		}
		t0 := time.Now()
		err := c.json(ctx, "POST", "/compatibility/subjects/"+subject+"/versions?verbose=true", candidate(i), &out)
		d := time.Since(t0)
		if err == nil && !out.IsCompatible {
			err = fmt.Errorf("compatibility check: a compatible candidate was found incompatible: %v", out.Messages)
		}
		return d, err
	}
	// An incompatible candidate must be refused (a sanity check that the
	// check really runs): a required field without a default.
	var bad struct {
		IsCompatible bool `json:"is_compatible"`
	}
	if err := c.json(ctx, "POST", "/compatibility/subjects/"+subject+"/versions",
		schemaReq{transitiveVersion(n, `{"name":"required_new","type":"string"}`)}, &bad); err != nil {
		return err
	}
	if bad.IsCompatible {
		return errors.New("compatibility check: a new required field without a default was found compatible under FULL_TRANSITIVE")
	}
	if b.cfg.cold {
		// Restart the server: the first check then loads and parses every version.
		if err := b.restart(); err != nil {
			return err
		}
		c.close()
		c = newClient(b.srv.url, 1)
		d, err := check(1_000_000)
		if err != nil {
			return err
		}
		r.cold = d
	}
	for i := range b.cfg.checks {
		d, err := check(i)
		if err != nil {
			return err
		}
		r.checks = append(r.checks, d)
	}
	next := strconv.Itoa(n + 1)
	for i := range b.cfg.checks {
		t0 := time.Now()
		if err := c.json(ctx, "POST", "/subjects/"+subject+"/versions", candidate(1000+i), nil); err != nil {
			return fmt.Errorf("register version %s: %w", next, err)
		}
		r.regs = append(r.regs, time.Since(t0))
		if i == 0 {
			var latest struct{ Version int }
			if err := c.json(ctx, "GET", "/subjects/"+subject+"/versions/latest", nil, &latest); err != nil {
				return err
			}
			if latest.Version != n+1 {
				return fmt.Errorf("after registering, latest version of %s is %d, want %d", subject, latest.Version, n+1)
			}
		}
		for _, q := range []string{"", "?permanent=true"} {
			if err := c.json(ctx, "DELETE", "/subjects/"+subject+"/versions/"+next+q, nil, nil); err != nil {
				return err
			}
		}
	}
	slices.Sort(r.checks)
	slices.Sort(r.regs)
	return nil
}

// wrkResult is wrk's answer.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	non2xx   int
	errLine  string
	output   string
	srvCPU   cpuUse
}

// runWrk runs wrk against GET /schemas/ids/{id}, cycling through the ids
// with a Lua script.
func (b *backend) runWrk(ctx context.Context) (*wrkResult, error) {
	script := filepath.Join(b.tmp, "ids.lua")
	var ids []string
	for _, id := range b.ids {
		ids = append(ids, strconv.Itoa(id))
	}
	lua := "local ids = {" + strings.Join(ids, ",") + "}\nlocal i = 0\n" +
		"request = function()\n  i = i + 1\n  return wrk.format(\"GET\", \"/schemas/ids/\" .. ids[(i % #ids) + 1])\nend\n"
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		return nil, err
	}
	secs := strconv.Itoa(max(int(b.cfg.dur.Seconds()), 1)) + "s"
	cmd := exec.CommandContext(ctx, b.cfg.wrk, "-t", strconv.Itoa(b.cfg.wrkThreads), "-c", strconv.Itoa(b.cfg.conns),
		"-d", secs, "--latency", "-s", script, b.srv.url)
	c0 := sampleCPU(b.srv.pid)
	out, err := cmd.CombinedOutput()
	c1 := sampleCPU(b.srv.pid)
	if err != nil {
		return nil, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	r := &wrkResult{output: string(out), srvCPU: cpuBetween(c0, c1)}
	if m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindStringSubmatch(r.output); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := regexp.MustCompile(`(?m)^\s+50%\s+(\S+)`).FindStringSubmatch(r.output); m != nil {
		r.p50 = wrkDur(m[1])
	}
	if m := regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`).FindStringSubmatch(r.output); m != nil {
		r.p99 = wrkDur(m[1])
	}
	if m := regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`).FindStringSubmatch(r.output); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := regexp.MustCompile(`(?m)^\s+Socket errors:.*$`).FindString(r.output); m != "" {
		r.errLine = strings.TrimSpace(m)
	}
	return r, nil
}

// wrkDur parses wrk's durations: 512.00us, 1.23ms, 1.02s, 2.00m.
func wrkDur(s string) time.Duration {
	units := []struct {
		suffix string
		d      time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0
			}
			return time.Duration(f * float64(u.d))
		}
	}
	return 0
}

// rssKB is the server's resident memory.
func rssKB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return 0
}
