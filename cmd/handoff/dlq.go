package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
)

const dlqUsage = `Usage: handoff dlq COMMAND [ARGS] [FLAGS]

Commands:
  list    [filters] [--json] [--incidents]        the letters, oldest first, with their root cause
  show    ID [--json]                             one letter: why it failed, its root cause and playbook
  edit    ID --data FILE|- [--content-type TYPE]  replace the message's data
  replay  ID... | --all [filters] [--dry-run] [--rate N] --broker URL
                                                  send letters back to the group that failed
  purge   [filters] --yes | --dry-run             delete letters

Filters: --consumer GROUP --topic T --class CLASS --state open|replayed|any
         --since 1h|RFC3339 --until 1h|RFC3339 --limit N --after ID
         --error TEXT (one of the letter's errors contains TEXT, any case)
--dry-run prints the letters a bulk replay or purge would take, and their count.

Every command takes --server URL --token T (or $HANDOFF_SERVER, $HANDOFF_TOKEN):
work through a running server's API (handoff serve or dev), which replays
through its own broker. Or --db: a SQLite path (default .handoff/handoff.db, or
$HANDOFF_DB), postgres://... or mysql://user@tcp(host:3306)/db. Flags may
stand anywhere. list and show only read; no command migrates the database.
--broker (or $HANDOFF_BROKER): ` + brokerSchemes + `.
list and show take --rules FILE (or $HANDOFF_DLQ_RULES): root-cause rules
of your own, a JSON array of {name, class, pattern, playbook}, tried before
the built-in ones. list --incidents groups letters by cause and first seen.
Output is for people; --json prints the stable JSON of a letter with its cause.
Run "handoff dlq COMMAND --help" for a command's flags.
`

// filterFlags are the list, replay --all and purge filters, named as the
// HTTP API's parameters.
type filterFlags map[string]*string

func addFilter(fs *flag.FlagSet) filterFlags {
	return filterFlags{
		"consumer": fs.String("consumer", "", "only this consumer group (\"relay\": messages the broker refused)"),
		"topic":    fs.String("topic", "", "only this topic"),
		"class": fs.String("class", "", "only this error class ("+strings.Join([]string{dlq.ClassHandler, dlq.ClassPermanent,
			dlq.ClassPanic, dlq.ClassDecode, dlq.ClassInvalid, dlq.ClassTooLarge, dlq.ClassUnknownType, dlq.ClassSchema, dlq.ClassPublish}, ", ")+")"),
		"state": fs.String("state", "", "open, replayed or any (default any; replay --all takes open ones)"),
		"since": fs.String("since", "", "only letters whose last failure is at or after this: an RFC 3339 time or a duration back from now (1h)"),
		"until": fs.String("until", "", "only letters whose last failure is before this (same forms as --since)"),
		"limit": fs.String("limit", "", "at most this many letters"),
		"after": fs.String("after", "", "only letters after this id (paging)"),
	}
}

func (f filterFlags) filter() (dlq.Filter, error) {
	v := url.Values{}
	for k, p := range f {
		if *p != "" {
			v.Set(k, *p)
		}
	}
	out, err := dlq.ParseFilter(v, time.Now())
	if err != nil {
		return dlq.Filter{}, fmt.Errorf("--%w", err)
	}
	return out, nil
}

var dlqSynopsis = map[string]string{
	"list":   "dlq list [filters] [--json] [--incidents [--gap 10m]] [--rules FILE] [--db DB | --server URL [--token T]]",
	"show":   "dlq show ID [--json] [--rules FILE] [--db DB | --server URL [--token T]]",
	"edit":   "dlq edit ID --data FILE|- [--content-type TYPE] [--db DB | --server URL [--token T]]",
	"replay": "dlq replay ID... | --all [filters] [--dry-run] [--rate N] (--broker URL [--db DB] | --server URL [--token T])",
	"purge":  "dlq purge [filters] --yes|--dry-run [--db DB | --server URL [--token T]]",
}

func dlqCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return errors.New("dlq: a command is required")
	}
	cmd := args[0]
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, dlqUsage)
		return flag.ErrHelp
	}
	synopsis, ok := dlqSynopsis[cmd]
	if !ok {
		fmt.Fprint(stderr, dlqUsage)
		return fmt.Errorf("dlq: unknown command %q", cmd)
	}
	fs := flag.NewFlagSet("dlq "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, synopsis)
	dbSpec := fs.String("db", envOr("HANDOFF_DB", defaultDB), "database: "+dbForms+" (env HANDOFF_DB)")
	server := fs.String("server", envOr("HANDOFF_SERVER", ""), "work through this server's API instead of the database, e.g. http://127.0.0.1:8477 (env HANDOFF_SERVER)")
	token := fs.String("token", envOr("HANDOFF_TOKEN", ""), "bearer token for --server (env HANDOFF_TOKEN)")
	var asJSON, all, yes, incidents *bool
	var data, contentType, brokerURL, rulesFile *string
	var gap *time.Duration
	var ff filterFlags
	errorText, dryRun, rate := new(string), new(bool), new(float64)
	switch cmd {
	case "list", "show":
		asJSON = fs.Bool("json", false, "print the stable JSON of the letters instead of text")
		rulesFile = fs.String("rules", envOr("HANDOFF_DLQ_RULES", ""), "root-cause rules of your own: a JSON array of {name, class, pattern, playbook} (env HANDOFF_DLQ_RULES)")
	}
	if cmd == "list" {
		incidents = fs.Bool("incidents", false, "group the letters by root cause and first seen: a storm is one incident")
		gap = fs.Duration("gap", dlq.DefaultIncidentGap, "with --incidents: letters of one cause this close belong to one incident")
	}
	switch cmd {
	case "list", "replay", "purge":
		ff = addFilter(fs)
		errorText = fs.String("error", "", "only letters one of whose errors contains this text (any case)")
	}
	switch cmd {
	case "replay", "purge":
		dryRun = fs.Bool("dry-run", false, "print the letters it would take, and their count; change nothing")
	}
	switch cmd {
	case "edit":
		data = fs.String("data", "", "file with the new data, or - for standard input")
		contentType = fs.String("content-type", "", "new datacontenttype (default: keep)")
	case "replay":
		brokerURL = fs.String("broker", envOr("HANDOFF_BROKER", ""), "broker to send through: "+brokerSchemes+" (env HANDOFF_BROKER)")
		all = fs.Bool("all", false, "replay every open letter the filters select")
		rate = fs.Float64("rate", 0, "replay at most this many letters a second (0: no limit)")
	case "purge":
		yes = fs.Bool("yes", false, "really delete")
	}
	if err := parseArgs(fs, args[1:], stdout); err != nil {
		return err
	}
	wantIDs := func(n int) error {
		switch {
		case n < 0 && fs.NArg() == 0:
			return fmt.Errorf("dlq %s: letter ids are required", cmd)
		case n > 0 && fs.NArg() != n:
			return fmt.Errorf("dlq %s: exactly one letter id is required (got %d arguments: %q)", cmd, fs.NArg(), fs.Args())
		case n == 0 && fs.NArg() != 0:
			return fmt.Errorf("dlq %s: takes no arguments (got %q)", cmd, fs.Args())
		}
		return nil
	}
	var f dlq.Filter
	if ff != nil {
		var err error
		if f, err = ff.filter(); err != nil {
			return fmt.Errorf("dlq %s: %w", cmd, err)
		}
	}
	// Check the arguments before touching the database or the broker.
	switch cmd {
	case "list", "purge":
		if err := wantIDs(0); err != nil {
			return err
		}
		if cmd == "purge" && !*yes && !*dryRun {
			return errors.New("dlq purge: deleting needs --yes (or --dry-run, to see what it would delete)")
		}
	case "show":
		if err := wantIDs(1); err != nil {
			return err
		}
	case "edit":
		if err := wantIDs(1); err != nil {
			return err
		}
		if *data == "" {
			return errors.New("dlq edit: --data is required (a file, or - for standard input)")
		}
	case "replay":
		if *all {
			if err := wantIDs(0); err != nil {
				return fmt.Errorf("%w: --all takes filters, not ids", err)
			}
		} else if err := wantIDs(-1); err != nil {
			return fmt.Errorf("%w (or --all)", err)
		} else if *dryRun {
			return errors.New("dlq replay: --dry-run goes with --all")
		}
		if *rate < 0 {
			return fmt.Errorf("dlq replay: --rate %v: must be >= 0", *rate)
		}
	}

	classifier := dlq.DefaultClassifier
	if rulesFile != nil {
		var err error
		if classifier, err = loadClassifier(*rulesFile); err != nil {
			return fmt.Errorf("dlq %s: %w", cmd, err)
		}
	}
	if *server != "" {
		a := remoteArgs{ff: ff, ids: fs.Args(), asJSON: asJSON != nil && *asJSON, all: all != nil && *all,
			dryRun: *dryRun, errorText: *errorText, rate: *rate, classifier: classifier}
		if incidents != nil && *incidents {
			a.incidents, a.gap = true, *gap
		}
		if cmd == "edit" {
			a.data, a.contentType = *data, *contentType
		}
		return dlqRemote(ctx, cmd, *server, *token, a, stdin, stdout, stderr)
	}
	readOnly := cmd == "list" || cmd == "show"
	db, err := openDB(ctx, "db", *dbSpec, dbOpen{readOnly: readOnly})
	if err != nil {
		return fmt.Errorf("dlq %s: %w", cmd, err)
	}
	defer db.Close()
	q, err := dlq.New(db.dlqStore())
	if err != nil {
		return err
	}

	switch cmd {
	case "list":
		ls, err := selectLetters(ctx, q, f, *errorText)
		if err != nil {
			return explainDB(*dbSpec, err)
		}
		if *incidents {
			in := dlq.Incidents(ls, classifier, *gap)
			if *asJSON {
				if in == nil {
					in = []dlq.Incident{}
				}
				return printJSON(stdout, in)
			}
			printIncidents(stdout, in)
			fmt.Fprintf(stderr, "%d dead letters in %d incident(s)\n", len(ls), len(in))
			return nil
		}
		if *asJSON {
			b, err := dlq.MarshalListDiagnosed(ls, classifier)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		printList(stdout, ls, classifier)
		if len(ls) == 0 {
			fmt.Fprintln(stderr, "no dead letters")
		} else {
			fmt.Fprintf(stderr, "%d dead letters; see one with: handoff dlq show ID\n", len(ls))
		}
		return nil
	case "show":
		l, err := q.Get(ctx, fs.Arg(0))
		if err != nil {
			return explainDB(*dbSpec, err)
		}
		if *asJSON {
			b, err := dlq.MarshalDiagnosed(l, classifier)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		printLetter(stdout, l, classifier)
		return nil
	case "edit":
		body, err := readData(*data, stdin)
		if err != nil {
			return err
		}
		if err := q.Edit(ctx, fs.Arg(0), body, *contentType); err != nil {
			return explainDB(*dbSpec, err)
		}
		fmt.Fprintf(stdout, "edited %s (%d bytes of data); send it back with: handoff dlq replay %s --broker URL\n", fs.Arg(0), len(body), fs.Arg(0))
		return nil
	case "replay":
		var b dlq.Broker
		if !*dryRun {
			var closeBroker func()
			b, closeBroker, err = openBroker(*brokerURL)
			if err != nil {
				return fmt.Errorf("dlq replay: %w", err)
			}
			defer closeBroker()
		}
		if *all && (*errorText != "" || *dryRun || *rate > 0) {
			f.State = dlq.StateOpen
			ls, err := selectLetters(ctx, q, f, *errorText)
			if err != nil {
				return explainDB(*dbSpec, err)
			}
			return bulk(ctx, "replay", ls, *dryRun, *rate,
				func(ctx context.Context, id string) error { return q.Replay(ctx, b, id) }, stdout, stderr)
		}
		if *all {
			n, err := q.ReplayAll(ctx, b, f, func(done, total int) {
				if done == total || done%100 == 0 {
					fmt.Fprintf(stderr, "\rreplayed %d/%d", done, total)
				}
			})
			fmt.Fprintln(stderr)
			fmt.Fprintf(stdout, "replayed %d\n", n)
			return err
		}
		var errs []error
		for _, id := range fs.Args() {
			l, err := q.Get(ctx, id)
			if err == nil {
				err = q.Replay(ctx, b, id)
			}
			if err != nil {
				errs = append(errs, explainDB(*dbSpec, err))
				continue
			}
			to := "group " + l.Consumer + " of " + l.Topic
			if l.Consumer == dlq.RelayConsumer {
				to = "topic " + l.Topic
			}
			fmt.Fprintf(stdout, "replayed %s to %s (message %s)\n", id, to, l.Message.ID)
		}
		return errors.Join(errs...)
	case "purge":
		if *errorText != "" || *dryRun {
			ls, err := selectLetters(ctx, q, f, *errorText)
			if err != nil {
				return explainDB(*dbSpec, err)
			}
			return bulk(ctx, "purge", ls, *dryRun, 0, q.Delete, stdout, stderr)
		}
		n, err := q.Purge(ctx, f)
		if err != nil {
			return explainDB(*dbSpec, err)
		}
		fmt.Fprintf(stdout, "purged %d\n", n)
		return nil
	}
	return nil
}

func stateOf(l *dlq.Letter) string {
	if l.Open() {
		return "open"
	}
	return "replayed"
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.UTC().Format("2006-01-02")
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// printList prints letters as a table.
func printList(w io.Writer, ls []*dlq.Letter, c *dlq.Classifier) {
	if len(ls) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONSUMER\tTOPIC\tCLASS\tCAUSE\tSTATE\tATTEMPTS\tLAST FAILURE\tERROR")
	for _, l := range ls {
		first := ""
		if len(l.Errors) > 0 {
			first = clip(l.Errors[0], 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", l.ID, l.Consumer, l.Topic, l.Class, c.ClassifyLetter(l).Cause, stateOf(l), l.Attempts, ago(l.LastFailure), first)
	}
	tw.Flush()
}

// maxShownData bounds the data printed by show.
const maxShownData = 4 << 10

// printLetter prints one letter for a person.
func printLetter(w io.Writer, l *dlq.Letter, c *dlq.Classifier) {
	d := c.Diagnose(l)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("letter", l.ID)
	row("consumer", l.Consumer)
	row("topic", l.Topic)
	row("class", l.Class)
	row("cause", fmt.Sprintf("%s  (rule: %s)", d.Cause, d.Rule))
	state := "open"
	if !l.Open() {
		state = "replayed " + l.ReplayedAt.UTC().Format(time.RFC3339)
	}
	row("state", state)
	row("attempts", strconv.Itoa(l.Attempts))
	row("first failure", l.FirstFailure.UTC().Format(time.RFC3339)+" ("+ago(l.FirstFailure)+")")
	row("last failure", l.LastFailure.UTC().Format(time.RFC3339)+" ("+ago(l.LastFailure)+")")
	for i, e := range l.Errors {
		k := ""
		if i == 0 {
			k = "errors"
		}
		row(k, fmt.Sprintf("%d. %s", i+1, strings.ReplaceAll(e, "\n", "\n\t   ")))
	}
	if m := l.Message; m != nil {
		row("message", m.ID)
		row("  type", m.Type)
		row("  source", m.Source)
		for _, a := range [][2]string{{"subject", m.Subject}, {"partition key", m.PartitionKey},
			{"content type", m.DataContentType}, {"data schema", m.DataSchema}, {"correlation id", m.CorrelationID}} {
			if a[1] != "" {
				row("  "+a[0], a[1])
			}
		}
		if !m.Time.IsZero() {
			row("  time", m.Time.UTC().Format(time.RFC3339Nano))
		}
		keys := make([]string, 0, len(m.Extensions))
		for k := range m.Extensions {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			row("  "+k, m.Extensions[k])
		}
	}
	tw.Flush()
	if m := l.Message; m != nil {
		fmt.Fprintf(w, "data (%d bytes):\n%s\n", len(m.Data), showData(m))
	}
	if l.Stack != "" {
		fmt.Fprintf(w, "stack:\n%s\n", l.Stack)
	}
	fmt.Fprintf(w, "\nplaybook (%s):\n%s\n", d.Cause, indent(d.Playbook, "  "))
	if l.Open() {
		fmt.Fprintf(w, "\nfix the data:  handoff dlq edit %s --data FILE\nsend it back:  handoff dlq replay %s --broker URL\n", l.ID, l.ID)
	}
}

// showData renders data for a terminal: indented JSON, text, or a note.
func showData(m *handoff.Message) string {
	d := m.Data
	suffix := ""
	if len(d) > maxShownData {
		d, suffix = d[:maxShownData], fmt.Sprintf("\n… (%d more bytes; --json prints all)", len(m.Data)-maxShownData)
	}
	if handoff.IsJSON(m.DataContentType) && len(m.Data) <= maxShownData {
		var buf bytes.Buffer
		if json.Indent(&buf, m.Data, "  ", "  ") == nil {
			return "  " + buf.String()
		}
	}
	if utf8.Valid(d) {
		return "  " + string(d) + suffix
	}
	return fmt.Sprintf("  (binary; --json prints it as data_base64)%s", suffix)
}
