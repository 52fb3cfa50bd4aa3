package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// row is one line of the summary: a value per round and their median.
type row struct {
	label  string
	vals   []float64
	format string // of one value
}

func (r row) String() string {
	parts := make([]string, len(r.vals))
	for i, v := range r.vals {
		parts[i] = fmt.Sprintf(r.format, v)
	}
	return fmt.Sprintf("| %s | %s | **%s** |", r.label, strings.Join(parts, " / "), fmt.Sprintf(r.format, median(r.vals)))
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func collect(rs []*roundResult, f func(*roundResult) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// summary prints a table per database and the targets of issue 5.
func summary(w io.Writer, cfg config, names []string, res map[string][]*roundResult) {
	fmt.Fprintf(w, "\n## Summary (per round, and the median of %d rounds)\n", cfg.rounds)
	type target struct{ reads, wrk, regs, check, checkP99 float64 }
	targets := map[string]target{}
	for _, name := range names {
		rs := res[name]
		wk := cfg.workloads
		fmt.Fprintf(w, "\n### %s\n\n| measure | rounds | median |\n|---|---|---:|\n", name)
		var rows []row
		var t target
		if wk["reads"] {
			rows = append(rows,
				row{fmt.Sprintf("GET /schemas/ids/{id}, Go load generator, %d conns: req/s", cfg.conns), collect(rs, func(r *roundResult) float64 { return r.reads.rate() }), "%.0f"},
				row{"  p50 ms", collect(rs, func(r *roundResult) float64 { return msf(r.reads.q(0.5)) }), "%.2f"},
				row{"  p99 ms", collect(rs, func(r *roundResult) float64 { return msf(r.reads.q(0.99)) }), "%.2f"},
				row{"  cores used: server", collect(rs, func(r *roundResult) float64 { return r.reads.cpu.srv }), "%.2f"},
				row{"  cores used: load generator", collect(rs, func(r *roundResult) float64 { return r.reads.cpu.self }), "%.2f"},
				row{"  server CPU µs per request", collect(rs, func(r *roundResult) float64 { return perReq(r.reads.cpu.srvTime, r.reads.n) }), "%.1f"},
			)
			t.reads = median(rows[0].vals)
		}
		if wk["wrk"] && cfg.wrk != "" {
			rows = append(rows,
				row{fmt.Sprintf("GET /schemas/ids/{id}, wrk -t%d -c%d: req/s", cfg.wrkThreads, cfg.conns), collect(rs, func(r *roundResult) float64 { return r.wrk.rps }), "%.0f"},
				row{"  p50 ms", collect(rs, func(r *roundResult) float64 { return msf(r.wrk.p50) }), "%.2f"},
				row{"  p99 ms", collect(rs, func(r *roundResult) float64 { return msf(r.wrk.p99) }), "%.2f"},
				row{"  cores used: server", collect(rs, func(r *roundResult) float64 { return r.wrk.srvCPU.srv }), "%.2f"},
			)
			t.wrk = median(collect(rs, func(r *roundResult) float64 { return r.wrk.rps }))
		}
		if wk["regs"] {
			rows = append(rows,
				row{fmt.Sprintf("registrations, %d clients, each its own subject: reg/s", cfg.regConns), collect(rs, func(r *roundResult) float64 { return r.own.rate() }), "%.0f"},
				row{"  p50 ms", collect(rs, func(r *roundResult) float64 { return msf(r.own.q(0.5)) }), "%.2f"},
				row{"  p99 ms", collect(rs, func(r *roundResult) float64 { return msf(r.own.q(0.99)) }), "%.2f"},
				row{"  cores used: server", collect(rs, func(r *roundResult) float64 { return r.own.cpu.srv }), "%.2f"},
				row{"  cores used: postgres", collect(rs, func(r *roundResult) float64 { return r.own.cpu.pg }), "%.2f"},
				row{"  server CPU µs per registration", collect(rs, func(r *roundResult) float64 { return perReq(r.own.cpu.srvTime, r.own.n) }), "%.0f"},
				row{"  postgres CPU µs per registration", collect(rs, func(r *roundResult) float64 { return perReq(r.own.cpu.pgTime, r.own.n) }), "%.0f"},
			)
			t.regs = median(collect(rs, func(r *roundResult) float64 { return r.own.rate() }))
		}
		if wk["regs1"] {
			rows = append(rows,
				row{fmt.Sprintf("registrations, %d clients, one subject: reg/s", cfg.regConns), collect(rs, func(r *roundResult) float64 { return r.one.rate() }), "%.0f"},
				row{"  p50 ms", collect(rs, func(r *roundResult) float64 { return msf(r.one.q(0.5)) }), "%.2f"},
				row{"  p99 ms", collect(rs, func(r *roundResult) float64 { return msf(r.one.q(0.99)) }), "%.2f"},
			)
		}
		if wk["transitive"] {
			rows = append(rows,
				row{fmt.Sprintf("FULL_TRANSITIVE check against %d versions: median ms (%d runs)", cfg.versions, cfg.checks), collect(rs, func(r *roundResult) float64 { return msf(quantile(r.checks, 0.5)) }), "%.2f"},
				row{"  p99 ms", collect(rs, func(r *roundResult) float64 { return msf(quantile(r.checks, 0.99)) }), "%.2f"},
			)
			if cfg.cold {
				rows = append(rows, row{"  first check after a server restart (cold), ms", collect(rs, func(r *roundResult) float64 { return msf(r.cold) }), "%.2f"})
			}
			rows = append(rows,
				row{fmt.Sprintf("registering version %d (FULL_TRANSITIVE): median ms", cfg.versions+1), collect(rs, func(r *roundResult) float64 { return msf(quantile(r.regs, 0.5)) }), "%.2f"},
				row{"  p99 ms", collect(rs, func(r *roundResult) float64 { return msf(quantile(r.regs, 0.99)) }), "%.2f"},
				row{fmt.Sprintf("registering versions 1..%d one after another, s", cfg.versions), collect(rs, func(r *roundResult) float64 { return r.transSetup.Seconds() }), "%.2f"},
			)
			t.check = median(collect(rs, func(r *roundResult) float64 { return msf(quantile(r.checks, 0.5)) }))
			t.checkP99 = median(collect(rs, func(r *roundResult) float64 { return msf(quantile(r.checks, 0.99)) }))
		}
		for _, r := range rows {
			fmt.Fprintln(w, r)
		}
		targets[name] = t
	}

	fmt.Fprintf(w, "\n### Targets (issue 5, for a 2-core machine)\n\n| target | measured (median of rounds) | verdict |\n|---|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**missed**"
	}
	for _, name := range names {
		t := targets[name]
		if cfg.workloads["reads"] {
			fmt.Fprintf(w, "| ≥ 20,000 id reads/s (%s) | %.0f/s, Go load generator on the same cores | %s |\n", name, t.reads, verdict(t.reads >= 20000))
		}
		if t.wrk > 0 {
			fmt.Fprintf(w, "| ≥ 20,000 id reads/s (%s), wrk cross-check | %.0f/s | %s |\n", name, t.wrk, verdict(t.wrk >= 20000))
		}
		if cfg.workloads["regs"] && name == "postgres" {
			fmt.Fprintf(w, "| ≥ 1,000 registrations/s on PostgreSQL | %.0f/s (%d clients, own subjects) | %s |\n", t.regs, cfg.regConns, verdict(t.regs >= 1000))
		}
		if cfg.workloads["transitive"] {
			fmt.Fprintf(w, "| ≤ 50 ms transitive check across %d versions (%s) | median %.2f ms, p99 %.2f ms | %s |\n", cfg.versions, name, t.check, t.checkP99, verdict(t.check <= 50))
		}
	}
	fmt.Fprintf(w, "\nPeers (figures quoted from the issue, not measured here: no Docker or Java artifacts on this machine): Confluent Schema Registry ~6,100 id reads/s on 2 CPUs, Karapace ~600/s.\n")
}
