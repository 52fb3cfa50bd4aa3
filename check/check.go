package check

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/contract/openapi"
	"github.com/handoffhq/handoff/impact"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

// Checkpoint ids, in the order they are evaluated. The first five are the
// governance checkpoints required before go-live.
const (
	Topology    = "topology-documented"
	Schemas     = "schemas-registered"
	DeadLetters = "dead-letters-alerted"
	Idempotency = "duplicate-delivery-tested"
	Contracts   = "contracts-registered"
	OpenAPI     = "openapi-compatible"
	Findings    = "anti-patterns"
	Drift       = "topology-drift"
	CanIDeploy  = "can-i-deploy"
)

// checkpoints: id, title, and the role that owns the checkpoint when no
// team of handoff.yaml is named by a problem.
var checkpoints = []struct{ id, title, role string }{
	{Topology, "integration topology documented, every integration classified sync/async", "architecture"},
	{Schemas, "every event schema registered with compatibility rules", "producers"},
	{DeadLetters, "dead-letter store and an alert within 5 minutes of the first failed message", "platform"},
	{Idempotency, "duplicate-delivery tests passing in CI for every consumer", "consumers"},
	{Contracts, "contract tests registered for all consumers", "consumers"},
	{OpenAPI, "OpenAPI changes free of breaking changes", "providers"},
	{Findings, "no anti-patterns (chain of death, shared table, phantom event)", "architecture"},
	{Drift, "declared and observed topology agree", "architecture"},
	{CanIDeploy, "can-i-deploy to the target environment", "release"},
}

// Status of a checkpoint.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Problem is one reason a checkpoint fails, with the team to act.
type Problem struct {
	Subject string `json:"subject"`
	Message string `json:"message"`
	// Owner is the team (or teams, comma-separated) to act.
	Owner string `json:"owner"`
	// Line is the line of handoff.yaml it is about, when it is.
	Line int `json:"line,omitempty"`
}

// Result is one checkpoint's verdict.
type Result struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	// Owners are the teams of the problems, or the checkpoint's role when
	// no problem names a team.
	Owners   []string  `json:"owners"`
	Problems []Problem `json:"problems"`
	// Note says what was checked, or why the checkpoint was skipped.
	Note string `json:"note,omitempty"`
}

// Report is the gate's verdict.
type Report struct {
	System  string   `json:"system"`
	Passed  bool     `json:"passed"`
	Results []Result `json:"checkpoints"`
}

// Deployment names a version to ask can-i-deploy about.
type Deployment struct {
	Pacticipant string
	Version     string
}

// APIChange is a proposed OpenAPI change: the deployed document and the
// new one.
type APIChange struct {
	OldName, NewName string
	Old, New         []byte
}

// Input is what the gate looks at. A missing source of evidence fails the
// checkpoints that need it (a gate that cannot see cannot pass), except the
// optional ones (OpenAPI, drift, can-i-deploy), which are skipped.
type Input struct {
	System *system.System
	// Registry holds the event schemas.
	Registry *registry.Client
	// Broker holds the consumers' pacts and the deployment matrix.
	Broker *contract.BrokerClient
	// TestReport is a `go test -json` report of the repository's tests.
	TestReport []byte
	// Graph is the topology with observations; nil means the declared one.
	Graph *topology.Graph
	// APIChanges are OpenAPI documents to diff.
	APIChanges []APIChange
	// Environment and Deployments: can-i-deploy each to Environment.
	Environment string
	Deployments []Deployment
	Thresholds  topology.Thresholds
	// MaxAlertDelay is the slowest acceptable dead-letter alert (default 5m).
	MaxAlertDelay time.Duration
}

// Run evaluates every checkpoint.
func Run(ctx context.Context, in Input) (*Report, error) {
	if in.System == nil {
		return nil, errors.New("check: the system (handoff.yaml) is required")
	}
	if in.MaxAlertDelay == 0 {
		in.MaxAlertDelay = 5 * time.Minute
	}
	if in.Graph == nil {
		in.Graph = topology.FromSystem(in.System)
	}
	r := &Report{System: in.System.Name, Passed: true}
	for _, cp := range checkpoints {
		res := Result{ID: cp.id, Title: cp.title, Problems: []Problem{}}
		var err error
		switch cp.id {
		case Topology:
			res.Problems, res.Note = checkTopology(in.System)
		case Schemas:
			res.Problems, res.Note, err = checkSchemas(ctx, in)
		case DeadLetters:
			res.Problems, res.Note = checkDeadLetters(in.System, in.MaxAlertDelay)
		case Idempotency:
			res.Problems, res.Note, err = checkIdempotency(in)
		case Contracts:
			res.Problems, res.Note = checkContracts(ctx, in)
		case OpenAPI:
			res.Problems, res.Note, res.Status = checkOpenAPI(in)
		case Findings:
			res.Problems, res.Note = checkFindings(ctx, in)
		case Drift:
			res.Problems, res.Note, res.Status = checkDrift(in)
		case CanIDeploy:
			res.Problems, res.Note, res.Status = checkDeploy(ctx, in)
		}
		if err != nil {
			return nil, err
		}
		if res.Status == "" {
			res.Status = Pass
		}
		if len(res.Problems) > 0 {
			res.Status = Fail
			r.Passed = false
		}
		set := map[string]bool{}
		for i := range res.Problems {
			if res.Problems[i].Owner == "" {
				res.Problems[i].Owner = cp.role
			}
			for _, o := range strings.Split(res.Problems[i].Owner, ", ") {
				set[o] = true
			}
		}
		for o := range set {
			res.Owners = append(res.Owners, o)
		}
		sort.Strings(res.Owners)
		if len(res.Owners) == 0 {
			res.Owners = []string{cp.role}
		}
		r.Results = append(r.Results, res)
	}
	return r, nil
}

// Result returns the result of checkpoint id.
func (r *Report) Result(id string) *Result {
	for i := range r.Results {
		if r.Results[i].ID == id {
			return &r.Results[i]
		}
	}
	return nil
}

// Failed returns the ids of the failing checkpoints.
func (r *Report) Failed() []string {
	var out []string
	for _, res := range r.Results {
		if res.Status == Fail {
			out = append(out, res.ID)
		}
	}
	return out
}

func ownerOf(s *system.System, service string) string {
	if svc := s.Service(service); svc != nil {
		return svc.Owner
	}
	return ""
}

func checkTopology(s *system.System) ([]Problem, string) {
	var ps []Problem
	n := 0
	for _, svc := range s.Services {
		if svc.Owner == "" {
			ps = append(ps, Problem{Subject: svc.Name, Message: "service has no owner", Line: svc.Line})
		}
	}
	s.Integrations(func(svc *system.Service, in *system.Integration) {
		n++
		if in.Kind != system.Sync && in.Kind != system.Async {
			what := in.To
			if what == "" {
				what = in.Topic
			}
			ps = append(ps, Problem{Subject: svc.Name + " -> " + what, Owner: svc.Owner, Line: in.Line,
				Message: fmt.Sprintf("integration is not classified: kind %q must be sync or async", in.Kind)})
		}
	})
	return ps, fmt.Sprintf("%d services, %d integrations", len(s.Services), n)
}

// eventSubjects maps each event schema subject to the owner of its events,
// and reports async integrations that name no subject.
func eventSubjects(s *system.System) (map[string]string, []Problem) {
	subjects := map[string]string{}
	var ps []Problem
	for _, t := range s.Topics {
		if t.Subject != "" {
			subjects[t.Subject] = t.Owner
		}
	}
	s.Integrations(func(svc *system.Service, in *system.Integration) {
		if in.Kind != system.Async {
			return
		}
		sub := in.Subject
		if sub == "" {
			if t := s.Topic(in.Topic); t != nil {
				sub = t.Subject
			}
		}
		if sub == "" {
			if in.Direction == system.Publish {
				ps = append(ps, Problem{Subject: in.Topic, Owner: svc.Owner, Line: in.Line,
					Message: fmt.Sprintf("%s publishes to %s with no schema subject: name one (subject:)", svc.Name, in.Topic)})
			}
			return
		}
		if _, ok := subjects[sub]; !ok || in.Direction == system.Publish {
			subjects[sub] = svc.Owner
		}
	})
	return subjects, ps
}

func checkSchemas(ctx context.Context, in Input) ([]Problem, string, error) {
	subjects, ps := eventSubjects(in.System)
	names := make([]string, 0, len(subjects))
	for n := range subjects {
		names = append(names, n)
	}
	sort.Strings(names)
	if in.Registry == nil {
		for _, n := range names {
			ps = append(ps, Problem{Subject: n, Owner: subjects[n], Message: "no registry given (--registry): cannot see whether it is registered"})
		}
		return ps, "no registry", nil
	}
	for _, n := range names {
		vs, err := in.Registry.Versions(ctx, n)
		if errors.Is(err, registry.ErrNotFound) || err == nil && len(vs) == 0 {
			ps = append(ps, Problem{Subject: n, Owner: subjects[n], Message: "not registered in the schema registry"})
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("check: registry: subject %s: %w", n, err)
		}
		level, err := in.Registry.Config(ctx, n)
		own := err == nil
		if errors.Is(err, registry.ErrNotFound) {
			level, err = in.Registry.Config(ctx, "")
		}
		if err != nil {
			return nil, "", fmt.Errorf("check: registry: compatibility of %s: %w", n, err)
		}
		if level == schema.None {
			where := "the registry's global level"
			if own {
				where = "its own level"
			}
			ps = append(ps, Problem{Subject: n, Owner: subjects[n], Message: fmt.Sprintf("compatibility is NONE (%s): no rule guards its changes; set BACKWARD or stricter", where)})
		}
	}
	return ps, fmt.Sprintf("%d subjects", len(names)), nil
}

// consumers returns the services that consume from a topic.
func consumers(s *system.System) []*system.Service {
	var out []*system.Service
	for _, svc := range s.Services {
		for _, in := range svc.Integrations {
			if in.Kind == system.Async && in.Direction == system.Consume {
				out = append(out, svc)
				break
			}
		}
	}
	return out
}

func checkDeadLetters(s *system.System, max time.Duration) ([]Problem, string) {
	var ps []Problem
	cons := consumers(s)
	for _, svc := range cons {
		var store *system.DeadLetters
		for _, d := range s.DeadLetters {
			for _, name := range d.Services {
				if name == svc.Name {
					store = d
				}
			}
		}
		if store == nil {
			ps = append(ps, Problem{Subject: svc.Name, Owner: svc.Owner, Line: svc.Line, Message: "consumes events but no dead-letter store lists it"})
			continue
		}
		a := s.Alert(store.Alert)
		switch {
		case store.Alert == "":
			ps = append(ps, Problem{Subject: svc.Name, Owner: svc.Owner, Line: store.Line, Message: fmt.Sprintf("dead-letter store %s has no alert route", store.Name)})
		case a == nil:
			ps = append(ps, Problem{Subject: svc.Name, Owner: svc.Owner, Line: store.Line, Message: fmt.Sprintf("dead-letter store %s names alert %q, which is not declared", store.Name, store.Alert)})
		case a.On != "dead-letter":
			ps = append(ps, Problem{Subject: svc.Name, Owner: a.Owner, Line: a.Line, Message: fmt.Sprintf("alert %s fires on %q, not on dead-letter", a.Name, a.On)})
		case a.Within <= 0 || a.Within > max:
			within := "no delay bound (within:)"
			if a.Within > 0 {
				within = "within " + a.Within.String()
			}
			ps = append(ps, Problem{Subject: svc.Name, Owner: a.Owner, Line: a.Line, Message: fmt.Sprintf("alert %s pages %s: it must fire within %s of the first failed message", a.Name, within, max)})
		}
	}
	return ps, fmt.Sprintf("%d consumers", len(cons))
}

// DuplicateDeliveryMarker is the line handofftest.DuplicateDelivery logs
// (the same constant there; a test keeps them equal). It is repeated here so
// that the gate does not link the test helpers.
const DuplicateDeliveryMarker = "handofftest: duplicate-delivery"

// testEvent is one line of `go test -json` (test2json).
type testEvent struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// DuplicateDeliveryRuns reads a `go test -json` report and returns, for each
// consumer named by handofftest.DuplicateDelivery's line, whether every test
// that ran it passed (false when one failed).
func DuplicateDeliveryRuns(report []byte) (map[string]bool, error) {
	type key struct{ pkg, test string }
	ran := map[key][]string{}
	result := map[key]string{}
	sc := bufio.NewScanner(strings.NewReader(string(report)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := strings.TrimSpace(sc.Text())
		if b == "" {
			continue
		}
		if b[0] != '{' {
			continue // go test's own lines (build output) between events
		}
		var e testEvent
		if err := json.Unmarshal([]byte(b), &e); err != nil {
			return nil, fmt.Errorf("check: test report line %d: %w", line, err)
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			if i := strings.Index(e.Output, DuplicateDeliveryMarker+" consumer="); i >= 0 && e.Test != "" {
				rest := e.Output[i+len(DuplicateDeliveryMarker+" consumer="):]
				name := strings.TrimSpace(rest)
				if i := strings.IndexAny(name, " :"); i >= 0 {
					name = name[:i]
				}
				if !slices.Contains(ran[k], name) {
					ran[k] = append(ran[k], name)
				}
			}
		case "pass", "fail", "skip":
			if e.Test != "" {
				result[k] = e.Action
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("check: test report: %w", err)
	}
	out := map[string]bool{}
	for k, names := range ran {
		ok := result[k] == "pass"
		for _, n := range names {
			if prev, seen := out[n]; !seen || prev {
				out[n] = ok
			}
		}
	}
	return out, nil
}

func checkIdempotency(in Input) ([]Problem, string, error) {
	cons := consumers(in.System)
	var ps []Problem
	if in.TestReport == nil {
		for _, svc := range cons {
			ps = append(ps, Problem{Subject: svc.Name, Owner: svc.Owner, Message: "no go test -json report given (--tests): no evidence of a duplicate-delivery test"})
		}
		return ps, "no test report", nil
	}
	runs, err := DuplicateDeliveryRuns(in.TestReport)
	if err != nil {
		return nil, "", err
	}
	for _, svc := range cons {
		ok, ran := runs[svc.Name]
		switch {
		case !ran:
			ps = append(ps, Problem{Subject: svc.Name, Owner: svc.Owner, Line: svc.Line,
				Message: fmt.Sprintf("no test ran handofftest.DuplicateDelivery(t, %q, ...) in the report", svc.Name)})
		case !ok:
			ps = append(ps, Problem{Subject: svc.Name, Owner: svc.Owner, Line: svc.Line, Message: "its duplicate-delivery test failed: a redelivered message has a second effect"})
		}
	}
	return ps, fmt.Sprintf("%d consumers, %d with duplicate-delivery runs in the report", len(cons), len(runs)), nil
}

func checkContracts(ctx context.Context, in Input) ([]Problem, string) {
	var ps []Problem
	type pair struct{ consumer, provider string }
	seen := map[pair]bool{}
	var pairs []pair
	owner := map[pair]string{}
	in.System.Integrations(func(svc *system.Service, it *system.Integration) {
		var provider string
		switch {
		case it.Kind == system.Sync:
			provider = it.To
		case it.Kind == system.Async && it.Direction == system.Consume:
			// The provider of a topic's events: its declared publisher.
			in.System.Integrations(func(p *system.Service, pi *system.Integration) {
				if pi.Kind == system.Async && pi.Direction == system.Publish && pi.Topic == it.Topic {
					provider = p.Name
				}
			})
			if provider == "" {
				provider = it.Topic
			}
		default:
			return
		}
		if it.Contract == nil {
			ps = append(ps, Problem{Subject: svc.Name + " -> " + provider, Owner: svc.Owner, Line: it.Line,
				Message: "no contract declared for this consumer (contract: {consumer, provider})"})
			return
		}
		p := pair{it.Contract.Consumer, it.Contract.Provider}
		if !seen[p] {
			seen[p] = true
			pairs = append(pairs, p)
			owner[p] = ownerOf(in.System, p.consumer)
		}
	})
	for _, p := range pairs {
		subject := p.consumer + " -> " + p.provider
		if in.Broker == nil {
			ps = append(ps, Problem{Subject: subject, Owner: owner[p], Message: "no broker given (--broker): cannot see whether its pact is registered"})
			continue
		}
		href := "/pacts/provider/" + url.PathEscape(p.provider) + "/consumer/" + url.PathEscape(p.consumer) + "/latest"
		if _, _, err := in.Broker.FetchPact(ctx, href); err != nil {
			ps = append(ps, Problem{Subject: subject, Owner: owner[p], Message: fmt.Sprintf("no pact registered in the broker: %v", err)})
		}
	}
	return ps, fmt.Sprintf("%d consumer-provider pairs", len(pairs))
}

func checkOpenAPI(in Input) ([]Problem, string, Status) {
	if len(in.APIChanges) == 0 {
		return nil, "no OpenAPI documents given (--openapi OLD,NEW)", Skip
	}
	var ps []Problem
	for _, c := range in.APIChanges {
		rep, err := openapi.Diff(c.Old, c.New, openapi.Options{OldName: c.OldName, NewName: c.NewName})
		if err != nil {
			ps = append(ps, Problem{Subject: c.NewName, Message: err.Error()})
			continue
		}
		for _, ch := range rep.Changes {
			if ch.Level != openapi.Error {
				continue
			}
			msg := fmt.Sprintf("%s: %s %s: %s", ch.Rule, ch.Operation, ch.Path, ch.Text)
			if w := ch.Where(); w != "" {
				msg += " (" + w + ")"
			}
			ps = append(ps, Problem{Subject: c.NewName, Message: msg})
		}
	}
	return ps, fmt.Sprintf("%d document pairs", len(in.APIChanges)), ""
}

func checkFindings(ctx context.Context, in Input) ([]Problem, string) {
	var fields topology.PayloadFields
	if in.Registry != nil {
		fields = func(subject string) ([]string, bool) {
			r, err := in.Registry.Latest(ctx, subject)
			if err != nil {
				return nil, false
			}
			s, err := in.Registry.Resolve(ctx, r)
			if err != nil {
				return nil, false
			}
			p, err := schema.Parse(s)
			if err != nil {
				return nil, false
			}
			return impact.TopLevelFields(p)
		}
	}
	var ps []Problem
	for _, f := range topology.Findings(in.System, in.Graph, in.Thresholds, fields) {
		ps = append(ps, Problem{Subject: f.Subject, Owner: strings.Join(f.Owners, ", "), Message: f.Rule + ": " + f.Message})
	}
	note := "chains, shared tables, phantom events"
	if fields == nil {
		note = "chains, shared tables (phantom events need --registry)"
	}
	return ps, note
}

func checkDrift(in Input) ([]Problem, string, Status) {
	d := in.Graph.Drift()
	if d == nil {
		return nil, "no observed spans given (--spans): nothing to compare", Skip
	}
	var ps []Problem
	for _, x := range d {
		owner := ownerOf(in.System, x.Edge.From)
		if owner == "" {
			owner = ownerOf(in.System, x.Edge.To)
		}
		ps = append(ps, Problem{Subject: x.Edge.From + " -> " + x.Edge.To, Owner: owner, Line: x.Edge.Line,
			Message: fmt.Sprintf("%s (%s)", x.Kind, x.Edge.Kind)})
	}
	return ps, "declared edges against observed spans", ""
}

func checkDeploy(ctx context.Context, in Input) ([]Problem, string, Status) {
	if len(in.Deployments) == 0 {
		return nil, "no versions given (--deploy SERVICE=VERSION --to-environment ENV)", Skip
	}
	var ps []Problem
	if in.Environment == "" {
		return []Problem{{Subject: "--to-environment", Message: "the target environment is required with --deploy"}}, "", ""
	}
	for _, d := range in.Deployments {
		subject := d.Pacticipant + " " + d.Version
		if in.Broker == nil {
			ps = append(ps, Problem{Subject: subject, Owner: ownerOf(in.System, d.Pacticipant), Message: "no broker given (--broker)"})
			continue
		}
		v, err := in.Broker.CanIDeploy(ctx, d.Pacticipant, d.Version, in.Environment)
		if err != nil {
			ps = append(ps, Problem{Subject: subject, Owner: ownerOf(in.System, d.Pacticipant), Message: err.Error()})
			continue
		}
		if !v.Deployable {
			ps = append(ps, Problem{Subject: subject, Owner: ownerOf(in.System, d.Pacticipant), Message: "not deployable to " + in.Environment + ": " + v.Summary})
		}
	}
	return ps, fmt.Sprintf("%d versions to %s", len(in.Deployments), in.Environment), ""
}

// WriteText writes the report as a table for people: one row per
// checkpoint with its status and owners, then each failing checkpoint's
// problems.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "handoff check: system %s\n\n", r.System)
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECKPOINT\tSTATUS\tPROBLEMS\tOWNERS\tNOTE")
	for _, res := range r.Results {
		owners := "-"
		if res.Status == Fail {
			owners = strings.Join(res.Owners, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", res.ID, strings.ToUpper(string(res.Status)), len(res.Problems), owners, res.Note)
	}
	tw.Flush()
	for _, res := range r.Results {
		if res.Status != Fail {
			continue
		}
		fmt.Fprintf(bw, "\n%s: %s\n", res.ID, res.Title)
		for _, p := range res.Problems {
			line := ""
			if p.Line > 0 {
				line = fmt.Sprintf(" (handoff.yaml:%d)", p.Line)
			}
			fmt.Fprintf(bw, "  [%s] %s: %s%s\n", p.Owner, p.Subject, p.Message, line)
		}
	}
	verdict := "PASS"
	if !r.Passed {
		verdict = fmt.Sprintf("FAIL (%d of %d checkpoints)", len(r.Failed()), len(r.Results))
	}
	fmt.Fprintf(bw, "\n%s\n", verdict)
	return bw.Flush()
}
