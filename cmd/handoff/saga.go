package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/handoffhq/handoff/saga"
)

const sagaUsage = `Usage: handoff saga COMMAND [ARGS] [FLAGS]

Commands:
  list   [filters] [--json]   sagas, newest first, and how many are in each status
  show   ID [--json]          one saga and its timeline: each step's attempts, durations and errors
  retry  ID... [--json]       a stuck saga tries its failing compensation again
  skip   ID... [--json]       a stuck saga takes its failing compensation as done (you undid
                              the effect by hand) and goes on with the steps before it
  abort  ID... [--json]       a stuck saga ends as aborted: nothing more is done for it

Filters: --status running|compensating|stuck|completed|compensated|aborted
         --name SAGA --correlation-id ID
         --created-after, --created-before, --updated-after, --updated-before 1h|RFC3339
         --limit N (a page: default 100, at most 1000) --cursor C (the next page, as list printed it)

Only stuck sagas (a compensation kept failing) can be retried, skipped or
aborted. The saga then waits for a coordinator that has its definition (a
service running saga.Coordinator.Run on the same database) to take it on.

Every command takes --server URL --token T (or $HANDOFF_SERVER, $HANDOFF_TOKEN):
work through a running server's /sagas API (handoff serve). Or --db: a SQLite
path (default .handoff/handoff.db, or $HANDOFF_DB), postgres://... or
mysql://user@tcp(host:3306)/db, the database the services' sagas live in.
No command migrates the database. Flags may stand anywhere.
Output is for people; --json prints the JSON of the HTTP API.
`

var sagaSynopsis = map[string]string{
	"list":  "saga list [filters] [--json] [--db DB | --server URL [--token T]]",
	"show":  "saga show ID [--json] [--db DB | --server URL [--token T]]",
	"retry": "saga retry ID... [--json] [--db DB | --server URL [--token T]]",
	"skip":  "saga skip ID... [--json] [--db DB | --server URL [--token T]]",
	"abort": "saga abort ID... [--json] [--db DB | --server URL [--token T]]",
}

// sagaFilterFlags are list's filters: flag name → the API's parameter.
var sagaFilterFlags = []struct{ flag, param, help string }{
	{"status", "status", "only sagas in this status (running, compensating, stuck, completed, compensated, aborted)"},
	{"name", "name", "only sagas of this name"},
	{"correlation-id", "correlation_id", "only sagas started with this correlation id"},
	{"created-after", "created_after", "only sagas created at or after this: an RFC 3339 time or a duration back from now (1h)"},
	{"created-before", "created_before", "only sagas created before this (same forms)"},
	{"updated-after", "updated_after", "only sagas last changed at or after this (same forms)"},
	{"updated-before", "updated_before", "only sagas last changed before this (same forms)"},
	{"limit", "limit", "sagas on the page (default 100, at most 1000)"},
	{"cursor", "cursor", "the page after the one that printed this cursor"},
}

// sagaPage is a page of the list with the counts by status.
type sagaPage struct {
	saga.Page
	Counts map[saga.Status]int `json:"counts"`
}

// sagaOps is what the saga commands do, on a database or through a
// server.
type sagaOps interface {
	list(ctx context.Context, q url.Values) (*sagaPage, error)
	show(ctx context.Context, id string) (*saga.Detail, error)
	operate(ctx context.Context, op, id string) (*saga.Detail, error)
}

func sagaCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, sagaUsage)
		return errors.New("saga: a command is required")
	}
	cmd := args[0]
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, sagaUsage)
		return flag.ErrHelp
	}
	synopsis, ok := sagaSynopsis[cmd]
	if !ok {
		fmt.Fprint(stderr, sagaUsage)
		return fmt.Errorf("saga: unknown command %q (want list, show, retry, skip or abort)", cmd)
	}
	fs := flag.NewFlagSet("saga "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, synopsis)
	dbSpec := fs.String("db", envOr("HANDOFF_DB", defaultDB), "database: "+dbForms+" (env HANDOFF_DB)")
	server := fs.String("server", envOr("HANDOFF_SERVER", ""), "work through this server's API instead of the database, e.g. http://127.0.0.1:8477 (env HANDOFF_SERVER)")
	token := fs.String("token", envOr("HANDOFF_TOKEN", ""), "bearer token for --server (env HANDOFF_TOKEN)")
	asJSON := fs.Bool("json", false, "print the JSON of the HTTP API instead of text")
	filters := map[string]*string{}
	if cmd == "list" {
		for _, f := range sagaFilterFlags {
			filters[f.param] = fs.String(f.flag, "", f.help)
		}
	}
	if err := parseArgs(fs, args[1:], stdout); err != nil {
		return err
	}
	// Check the arguments before touching the database or the server.
	q := url.Values{}
	switch cmd {
	case "list":
		if fs.NArg() != 0 {
			return fmt.Errorf("saga list: takes no arguments (got %q); filter with --status, --name, --correlation-id", fs.Args())
		}
		for k, v := range filters {
			if *v != "" {
				q.Set(k, *v)
			}
		}
		if _, err := saga.ParseListFilter(q, time.Now()); err != nil {
			for _, f := range sagaFilterFlags {
				if strings.HasPrefix(err.Error(), f.param+":") {
					return fmt.Errorf("saga list: --%s%s", f.flag, strings.TrimPrefix(err.Error(), f.param))
				}
			}
			return fmt.Errorf("saga list: %w", err)
		}
	case "show":
		if fs.NArg() != 1 {
			return fmt.Errorf("saga show: exactly one saga id is required (got %d arguments: %q); find it with: handoff saga list", fs.NArg(), fs.Args())
		}
	default:
		if fs.NArg() == 0 {
			return fmt.Errorf("saga %s: saga ids are required; find the stuck ones with: handoff saga list --status stuck", cmd)
		}
	}
	where := " --db " + redact(*dbSpec)
	var ops sagaOps
	if *server != "" {
		c, err := newSagaClient(*server, *token)
		if err != nil {
			return fmt.Errorf("saga %s: %w", cmd, err)
		}
		ops, where = c, " --server "+*server
	} else {
		db, err := openDB(ctx, "db", *dbSpec, dbOpen{readOnly: cmd == "list" || cmd == "show"})
		if err != nil {
			return fmt.Errorf("saga %s: %w", cmd, err)
		}
		defer db.Close()
		c, err := sagaCoordinator(db, nil)
		if err != nil {
			return err
		}
		ops = localSagas{c}
	}

	switch cmd {
	case "list":
		p, err := ops.list(ctx, q)
		if err != nil {
			return fmt.Errorf("saga list: %w", explainSagaDB(err))
		}
		if *asJSON {
			return printJSON(stdout, p)
		}
		printSagaList(stdout, p.Sagas)
		var counts []string
		for _, s := range saga.Statuses {
			if n := p.Counts[s]; n > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", n, s))
			}
		}
		switch {
		case len(p.Sagas) == 0:
			fmt.Fprintln(stderr, "no sagas")
		case p.Next != "":
			fmt.Fprintf(stderr, "%d sagas on this page; the next: handoff saga list ... --cursor %s\n", len(p.Sagas), p.Next)
		default:
			fmt.Fprintf(stderr, "%d sagas; see one with: handoff saga show ID%s\n", len(p.Sagas), where)
		}
		if len(counts) > 0 {
			fmt.Fprintf(stderr, "in all: %s\n", strings.Join(counts, ", "))
		}
		if p.Counts[saga.Stuck] > 0 && q.Get("status") != string(saga.Stuck) {
			fmt.Fprintf(stderr, "stuck ones need you: handoff saga list --status stuck%s\n", where)
		}
		return nil
	case "show":
		d, err := ops.show(ctx, fs.Arg(0))
		if err != nil {
			return explainSaga(cmd, fs.Arg(0), where, err)
		}
		if *asJSON {
			return printJSON(stdout, d)
		}
		printSaga(stdout, d)
		if d.Status == saga.Stuck {
			fmt.Fprintf(stderr, "\nstuck: fix what makes the compensation of %s fail, then\n"+
				"  handoff saga retry %s%s   try it again\n"+
				"  handoff saga skip %s%s    you undid its effect by hand: go on\n"+
				"  handoff saga abort %s%s   give up on the saga\n", d.Step, d.ID, where, d.ID, where, d.ID, where)
		}
		return nil
	}
	var errs []error
	var done []*saga.Detail
	for _, id := range fs.Args() {
		d, err := ops.operate(ctx, cmd, id)
		if err != nil {
			errs = append(errs, explainSaga(cmd, id, where, err))
			continue
		}
		done = append(done, d)
		if !*asJSON {
			fmt.Fprintf(stdout, "%s %s: %s\n", map[string]string{"retry": "retried", "skip": "skipped", "abort": "aborted"}[cmd], id, sagaAfter(d))
		}
	}
	if *asJSON {
		if done == nil {
			done = []*saga.Detail{}
		}
		if err := printJSON(stdout, done); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// sagaAfter says what happens to a saga an operator moved.
func sagaAfter(d *saga.Detail) string {
	if d.Status == saga.Aborted {
		return "aborted; nothing more is done for it"
	}
	return fmt.Sprintf("%s at %s; a coordinator with the %s saga's definition takes it on (watch it with: handoff saga show %s)",
		d.Status, orDash(d.Step), d.Name, d.ID)
}

// explainSaga adds what to do next to an error about saga id.
func explainSaga(cmd, id, where string, err error) error {
	var ae *apiError
	isAPI := errors.As(err, &ae)
	switch {
	case errors.Is(err, saga.ErrNotStuck) || isAPI && ae.status == http.StatusConflict:
		msg := err.Error()
		if isAPI {
			msg = ae.msg
		}
		return fmt.Errorf("saga %s: %s\n(see where it is with: handoff saga show %s%s)", cmd, strings.TrimPrefix(msg, "saga: "), id, where)
	case errors.Is(err, saga.ErrNotFound) || isAPI && ae.status == http.StatusNotFound:
		return fmt.Errorf("saga %s: no saga %s here\n(list them with: handoff saga list%s)", cmd, id, where)
	}
	return fmt.Errorf("saga %s %s: %w", cmd, id, explainSagaDB(err))
}

// explainSagaDB adds what to do to an error from a database without the
// saga tables.
func explainSagaDB(err error) error {
	if err != nil && strings.Contains(err.Error(), "handoff_saga") &&
		(strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "doesn't exist")) {
		return fmt.Errorf("%w\n(the database has no saga tables: point --db at the database of the services that run sagas; their Migrate creates the tables)", err)
	}
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func printSagaList(w io.Writer, ss []saga.Summary) {
	if len(ss) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tSTEP\tUPDATED\tERROR")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Status, orDash(s.Step), fmtTime(s.UpdatedAt), oneLine(s.Error, 80))
	}
	tw.Flush()
}

// oneLine is s on one line, cut to n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// printSaga prints a saga for people: what it is, where it is, its steps,
// and its timeline, one line an event.
func printSaga(w io.Writer, d *saga.Detail) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "saga\t%s\n", d.ID)
	fmt.Fprintf(tw, "name\t%s (version %s)\n", d.Name, d.Version)
	fmt.Fprintf(tw, "status\t%s\n", d.Status)
	if d.Step != "" {
		fmt.Fprintf(tw, "step\t%s\n", d.Step)
	}
	fmt.Fprintf(tw, "correlation id\t%s\n", d.CorrelationID)
	fmt.Fprintf(tw, "created\t%s\n", fmtTime(d.CreatedAt))
	fmt.Fprintf(tw, "updated\t%s\n", fmtTime(d.UpdatedAt))
	if !d.EndedAt.IsZero() {
		fmt.Fprintf(tw, "ended\t%s\n", fmtTime(d.EndedAt))
	}
	if !d.DueAt.IsZero() {
		fmt.Fprintf(tw, "next look\t%s\n", fmtTime(d.DueAt))
	}
	if !d.Deadline.IsZero() {
		fmt.Fprintf(tw, "deadline\t%s\n", fmtTime(d.Deadline))
	}
	if d.Error != "" {
		label := "error"
		if d.Status != saga.Stuck {
			label = "last error" // kept after the saga moved on
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, oneLine(d.Error, 200))
	}
	var data bytes.Buffer
	if json.Compact(&data, d.Data) == nil {
		fmt.Fprintf(tw, "data\t%s\n", oneLine(data.String(), 200))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nsteps")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  STEP\tSTATE\tATTEMPTS\tCOMPENSATION\tERROR")
	for i, s := range d.Steps {
		mark := "  "
		if i == d.StepIndex && !d.Status.Ended() {
			mark = "> "
		}
		comp := orDash(s.Compensation)
		switch {
		case s.CompAttempts == 1:
			comp += " (1 attempt)"
		case s.CompAttempts > 1:
			comp += fmt.Sprintf(" (%d attempts)", s.CompAttempts)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%d\t%s\t%s\n", mark, s.Name, s.State, s.Attempts, comp, oneLine(s.Error, 80))
	}
	tw.Flush()

	fmt.Fprintln(w, "\ntimeline")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tKIND\tSTEP\tATTEMPT\tDURATION\tERROR")
	for _, e := range d.Timeline {
		attempt, dur := "", ""
		if e.Attempt > 0 {
			attempt = fmt.Sprint(e.Attempt)
		}
		if e.Duration > 0 {
			dur = e.Duration.Round(time.Microsecond).String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", fmtTime(e.At), e.Kind, e.Step, attempt, dur, oneLine(e.Error, 100))
	}
	tw.Flush()
}

// localSagas works on the database through an operator's coordinator.
type localSagas struct{ c *saga.Coordinator }

func (l localSagas) list(ctx context.Context, q url.Values) (*sagaPage, error) {
	f, err := saga.ParseListFilter(q, time.Now())
	if err != nil {
		return nil, err
	}
	p, err := l.c.List(ctx, f)
	if err != nil {
		return nil, err
	}
	counts, err := l.c.Counts(ctx)
	if err != nil {
		return nil, err
	}
	return &sagaPage{Page: *p, Counts: counts}, nil
}

func (l localSagas) show(ctx context.Context, id string) (*saga.Detail, error) {
	return l.c.Detail(ctx, id)
}

func (l localSagas) operate(ctx context.Context, op, id string) (*saga.Detail, error) {
	var err error
	switch op {
	case "retry":
		err = l.c.Retry(ctx, id)
	case "skip":
		err = l.c.Skip(ctx, id)
	case "abort":
		err = l.c.Abort(ctx, id)
	default:
		err = fmt.Errorf("unknown operation %q", op)
	}
	if err != nil {
		return nil, err
	}
	return l.c.Detail(ctx, id)
}

// sagaClient is a server's /sagas API.
type sagaClient struct {
	server, token string
	base          *url.URL
}

func newSagaClient(server, token string) (*sagaClient, error) {
	base, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("--server %q: must be the server's http or https URL, e.g. http://127.0.0.1:8477", server)
	}
	return &sagaClient{server: server, token: token, base: base}, nil
}

// do makes one request and decodes a 2xx JSON answer into v.
func (s *sagaClient) do(ctx context.Context, method, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is the server running at %s? %w", s.server, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"` // the guard's refusals
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error+e.Message != "" {
			msg = e.Error + e.Message
		}
		switch res.StatusCode {
		case http.StatusUnauthorized:
			msg += " (give the server's token with --token or HANDOFF_TOKEN)"
		case http.StatusForbidden:
			msg += " (ask for a token of that scope)"
		case http.StatusNotFound:
			if !strings.Contains(msg, "no saga") {
				msg += " (is it a handoff serve with the /sagas API?)"
			}
		}
		return &apiError{res.StatusCode, msg}
	}
	return json.Unmarshal(b, v)
}

func (s *sagaClient) list(ctx context.Context, q url.Values) (*sagaPage, error) {
	u := s.base.JoinPath("sagas")
	q.Set("counts", "true")
	u.RawQuery = q.Encode()
	var p sagaPage
	if err := s.do(ctx, http.MethodGet, u.String(), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (s *sagaClient) show(ctx context.Context, id string) (*saga.Detail, error) {
	var d saga.Detail
	if err := s.do(ctx, http.MethodGet, s.base.JoinPath("sagas", id).String(), &d); err != nil {
		return nil, err
	}
	return &d, nil
}

func (s *sagaClient) operate(ctx context.Context, op, id string) (*saga.Detail, error) {
	var d saga.Detail
	if err := s.do(ctx, http.MethodPost, s.base.JoinPath("sagas", id, op).String(), &d); err != nil {
		return nil, err
	}
	return &d, nil
}
