package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/handoffhq/handoff/adapter/mysql"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
)

const dlqUsage = `Usage: handoff dlq COMMAND [flags]

  list    [--consumer C] [--topic T] [--class K] [--since 1h] [--limit N] [--json]
  show    ID [--json]
  edit    ID --data FILE|- [--content-type TYPE]
  replay  ID... | --all [filters]   --broker nats://HOST:PORT
  purge   [filters] --yes

Every command takes --db: a SQLite path (default .handoff/handoff.db),
postgres://... or mysql://user@tcp(host:3306)/db.
`

// openStore opens the database named by spec and returns its dead-letter store.
func openStore(ctx context.Context, spec string) (*sql.DB, dlq.Store, error) {
	switch {
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		db, err := postgres.Open(ctx, spec)
		if err != nil {
			return nil, nil, err
		}
		return db, postgres.DLQStore(db), postgres.Migrate(ctx, db)
	case strings.HasPrefix(spec, "mysql://"):
		db, err := mysql.Open(ctx, strings.TrimPrefix(spec, "mysql://"))
		if err != nil {
			return nil, nil, err
		}
		return db, mysql.DLQStore(db), mysql.Migrate(ctx, db)
	default:
		path := strings.TrimPrefix(spec, "sqlite:")
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("--db %s: %w", spec, err)
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		return db, sqlite.DLQStore(db), sqlite.Migrate(ctx, db)
	}
}

const brokerSchemes = "nats://HOST:PORT"

// openPublisher connects to the broker named by url.
func openPublisher(url string) (dlq.Broker, func(), error) {
	switch {
	case strings.HasPrefix(url, "nats://"):
		// Wait for a broker that is down at start instead of failing.
		nc, err := natsadapter.Connect(url, natsgo.RetryOnFailedConnect(true))
		if err != nil {
			return nil, nil, err
		}
		c, err := natsadapter.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return c, func() { c.Close(); nc.Close() }, nil
	case url == "":
		return nil, nil, errors.New("--broker is required to replay (e.g. nats://127.0.0.1:4222)")
	default:
		return nil, nil, fmt.Errorf("--broker %s: unsupported scheme (want %s)", url, brokerSchemes)
	}
}

type filterFlags struct {
	consumer, topic, class *string
	since                  *time.Duration
	limit                  *int
}

func addFilter(fs *flag.FlagSet) filterFlags {
	return filterFlags{
		consumer: fs.String("consumer", "", "only this consumer group"),
		topic:    fs.String("topic", "", "only this topic"),
		class:    fs.String("class", "", "only this error class (handler, permanent, panic, decode, invalid, too-large, unknown-type, schema, publish)"),
		since:    fs.Duration("since", 0, "only letters whose last failure is within this long ago"),
		limit:    fs.Int("limit", 0, "at most this many letters (0: all)"),
	}
}

func (f filterFlags) filter() dlq.Filter {
	out := dlq.Filter{Consumer: *f.consumer, Topic: *f.topic, Class: *f.class, Limit: *f.limit}
	if *f.since > 0 {
		out.Since = time.Now().Add(-*f.since)
	}
	return out
}

func dlqCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(stderr, dlqUsage)
		if len(args) == 0 {
			return errors.New("dlq: a command is required")
		}
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet("dlq "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbSpec := fs.String("db", filepath.Join(".handoff", "handoff.db"), "database: SQLite path, postgres://..., or mysql://...")
	asJSON := fs.Bool("json", false, "print JSON")
	var ff filterFlags
	var data, contentType, brokerURL *string
	var all, yes *bool
	switch cmd {
	case "list", "purge", "replay":
		ff = addFilter(fs)
	}
	switch cmd {
	case "edit":
		data = fs.String("data", "", "file with the new payload, or - for standard input")
		contentType = fs.String("content-type", "", "new datacontenttype (default: keep)")
	case "replay":
		brokerURL = fs.String("broker", "", "broker to publish to (nats://HOST:PORT)")
		all = fs.Bool("all", false, "replay every open letter matching the filters")
	case "purge":
		yes = fs.Bool("yes", false, "really delete")
	case "list", "show":
	default:
		fmt.Fprint(stderr, dlqUsage)
		return fmt.Errorf("dlq: unknown command %q", cmd)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	db, store, err := openStore(ctx, *dbSpec)
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	defer db.Close()
	q, err := dlq.New(store)
	if err != nil {
		return err
	}

	switch cmd {
	case "list":
		ls, err := q.List(ctx, ff.filter())
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(ls)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCONSUMER\tTOPIC\tCLASS\tATTEMPTS\tLAST FAILURE\tREPLAYED\tERROR")
		for _, l := range ls {
			replayed := "-"
			if !l.ReplayedAt.IsZero() {
				replayed = l.ReplayedAt.Format(time.RFC3339)
			}
			first := ""
			if len(l.Errors) > 0 {
				first = l.Errors[0]
				if len(first) > 60 {
					first = first[:57] + "..."
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", l.ID, l.Consumer, l.Topic, l.Class, l.Attempts,
				l.LastFailure.Format(time.RFC3339), replayed, first)
		}
		tw.Flush()
		fmt.Fprintf(stderr, "%d dead letters\n", len(ls))
		return nil
	case "show":
		if fs.NArg() != 1 {
			return errors.New("dlq show: exactly one letter id is required")
		}
		l, err := q.Get(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		if !*asJSON {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(l)
	case "edit":
		if fs.NArg() != 1 {
			return errors.New("dlq edit: exactly one letter id is required")
		}
		var body []byte
		switch *data {
		case "":
			return errors.New("dlq edit: --data is required (a file, or - for standard input)")
		case "-":
			body, err = io.ReadAll(stdin)
		default:
			body, err = os.ReadFile(*data)
		}
		if err != nil {
			return fmt.Errorf("dlq edit: --data: %w", err)
		}
		if err := q.Edit(ctx, fs.Arg(0), body, *contentType); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "edited %s\n", fs.Arg(0))
		return nil
	case "replay":
		pub, closePub, err := openPublisher(*brokerURL)
		if err != nil {
			return fmt.Errorf("dlq replay: %w", err)
		}
		defer closePub()
		if *all {
			n, err := q.ReplayAll(ctx, pub, ff.filter(), func(done, total int) {
				if done == total || done%100 == 0 {
					fmt.Fprintf(stderr, "\rreplayed %d/%d", done, total)
				}
			})
			fmt.Fprintln(stderr)
			fmt.Fprintf(stdout, "replayed %d\n", n)
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("dlq replay: letter ids or --all are required")
		}
		var errs []error
		for _, id := range fs.Args() {
			if err := q.Replay(ctx, pub, id); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(stdout, "replayed %s\n", id)
		}
		return errors.Join(errs...)
	case "purge":
		if !*yes {
			return errors.New("dlq purge: deleting needs --yes")
		}
		n, err := q.Purge(ctx, ff.filter())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purged %d\n", n)
		return nil
	}
	return nil
}
