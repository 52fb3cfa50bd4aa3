package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/contract/broker"
)

const contractUsage = `Usage:
  handoff contract publish --consumer-version V [--branch B] [--tag T]... FILE|DIR...
  handoff contract verify --provider NAME --provider-url URL [--state-url URL] FILE...
  handoff contract verify --provider NAME --provider-url URL --provider-version V [--branch B]
                          [--selector JSON]... [--include-pending] [--include-wip-since DATE] [--publish]
  handoff contract can-i-deploy --pacticipant P --version V --to-environment E
  handoff contract openapi-diff [--json] [--warnings] OLD NEW   breaking changes fail
  handoff contract record-deployment --pacticipant P --version V --environment E [--application-instance I] [--release]
  handoff contract create-environment --name E [--production]
  handoff contract broker --db URL [--addr HOST:PORT] [--token T] [--token-file F] [--open-reads]

Commands that talk to a broker take --broker URL (env HANDOFF_BROKER_URL or
PACT_BROKER_BASE_URL) and --token T (env HANDOFF_BROKER_TOKEN or
PACT_BROKER_TOKEN); they work with handoff's broker and the Pact Broker.
Or --server URL (env HANDOFF_SERVER): a running handoff serve, whose broker
is at URL/contracts, with its --token (env HANDOFF_TOKEN).
--json prints the result for programs. Exit status: 0 on success (verified,
deployable), 1 otherwise.
`

// errNotDeployable and errVerificationFailed make the exit status 1 after
// the answer was printed.
var (
	errNotDeployable      = errors.New("contract: not deployable")
	errVerificationFailed = errors.New("contract: verification failed")
)

func contractCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, contractUsage)
		return errors.New("contract: a subcommand is required")
	}
	switch args[0] {
	case "publish":
		return contractPublish(ctx, args[1:], stdout, stderr)
	case "verify":
		return contractVerify(ctx, args[1:], stdout, stderr)
	case "can-i-deploy":
		return contractCanIDeploy(ctx, args[1:], stdout, stderr)
	case "record-deployment":
		return contractRecordDeployment(ctx, args[1:], stdout, stderr)
	case "create-environment":
		return contractCreateEnvironment(ctx, args[1:], stdout, stderr)
	case "broker":
		return contractBroker(ctx, args[1:], stdout, stderr)
	case "openapi-diff":
		return contractOpenAPIDiff(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, contractUsage)
		return flag.ErrHelp
	default:
		fmt.Fprint(stderr, contractUsage)
		return fmt.Errorf("contract: unknown subcommand %q", args[0])
	}
}

type brokerFlags struct {
	t    *target
	json *bool
}

func addBrokerFlags(fs *flag.FlagSet) brokerFlags {
	return brokerFlags{
		t: addTarget(fs, "broker", "the contract broker (handoff's or the Pact Broker)", "/contracts",
			[]string{"HANDOFF_BROKER_URL", "PACT_BROKER_BASE_URL"}, []string{"HANDOFF_BROKER_TOKEN", "PACT_BROKER_TOKEN"}),
		json: fs.Bool("json", false, "print JSON"),
	}
}

// client is the broker a contract command talks to: --broker, or a
// handoff server's at --server URL/contracts; ep explains its failures.
func (b brokerFlags) client(cmd string) (*contract.BrokerClient, endpoint, error) {
	base, token, ep, ok, err := b.t.resolve(cmd)
	if err != nil {
		return nil, ep, err
	}
	if !ok {
		return nil, ep, fmt.Errorf("%s: --broker URL (or HANDOFF_BROKER_URL) or --server URL (a handoff server, or HANDOFF_SERVER) is required", cmd)
	}
	return &contract.BrokerClient{BaseURL: base, Token: token}, ep, nil
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("contract "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// pactFiles expands directories into their .json files.
func pactFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, fmt.Errorf("contract: %w", err)
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "*.json"))
		if err != nil {
			return nil, err
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	if len(out) == 0 {
		return nil, errors.New("contract: no pact files given")
	}
	return out, nil
}

func readPactFile(path string) (*contract.Pact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	defer f.Close()
	p, err := contract.ReadPact(f)
	if err != nil {
		return nil, fmt.Errorf("contract: %s: %w", path, err)
	}
	return p, nil
}

func contractPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("publish", stderr)
	bf := addBrokerFlags(fs)
	version := fs.String("consumer-version", "", "the consumer's version (a commit, say)")
	branch := fs.String("branch", "", "the consumer version's branch")
	buildURL := fs.String("build-url", "", "the CI build's URL")
	var tags multi
	fs.Var(&tags, "tag", "a tag of the consumer version (repeatable)")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if *version == "" {
		return errors.New("contract publish: --consumer-version is required")
	}
	c, ep, err := bf.client("contract publish")
	if err != nil {
		return err
	}
	files, err := pactFiles(fs.Args())
	if err != nil {
		return err
	}
	byConsumer := map[string][]*contract.Pact{}
	var consumers []string
	for _, f := range files {
		p, err := readPactFile(f)
		if err != nil {
			return err
		}
		if _, ok := byConsumer[p.Consumer]; !ok {
			consumers = append(consumers, p.Consumer)
		}
		byConsumer[p.Consumer] = append(byConsumer[p.Consumer], p)
	}
	type result struct {
		Consumer string            `json:"consumer"`
		Version  string            `json:"version"`
		Branch   string            `json:"branch,omitempty"`
		Pacts    []string          `json:"providers"`
		Notices  []contract.Notice `json:"notices"`
	}
	var results []result
	for _, consumer := range consumers {
		ps := byConsumer[consumer]
		notices, err := c.PublishContracts(ctx, contract.PublishRequest{Pacticipant: consumer, Version: *version, Branch: *branch, Tags: tags, BuildURL: *buildURL, Pacts: ps})
		if err != nil {
			return fmt.Errorf("contract publish: %w", ep.explain(err))
		}
		r := result{Consumer: consumer, Version: *version, Branch: *branch, Notices: notices}
		for _, p := range ps {
			r.Pacts = append(r.Pacts, p.Provider)
		}
		results = append(results, r)
	}
	if *bf.json {
		return printJSON(stdout, results)
	}
	for _, r := range results {
		on := ""
		if r.Branch != "" {
			on = " on branch " + r.Branch
		}
		fmt.Fprintf(stdout, "published the pacts of %s %s%s with %s\n", r.Consumer, r.Version, on, strings.Join(r.Pacts, ", "))
		for _, n := range r.Notices {
			fmt.Fprintf(stdout, "  %s\n", n.Text)
		}
	}
	return nil
}

func contractVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	bf := addBrokerFlags(fs)
	provider := fs.String("provider", "", "the provider's name")
	providerURL := fs.String("provider-url", "", "the running provider's base URL")
	stateURL := fs.String("state-url", "", `URL to POST {"state","params","action"} to before and after each interaction`)
	version := fs.String("provider-version", "", "the provider's version (needed with --broker)")
	branch := fs.String("branch", "", "the provider version's branch")
	publish := fs.Bool("publish", false, "publish the results to the broker")
	pending := fs.Bool("include-pending", false, "verify pending pacts without failing on them")
	wip := fs.String("include-wip-since", "", "also verify work-in-progress pacts published since this date (2006-01-02)")
	buildURL := fs.String("build-url", "", "the CI build's URL, published with the results")
	var selectors multi
	fs.Var(&selectors, "selector", `a consumer version selector as JSON, e.g. '{"mainBranch":true}' (repeatable)`)
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if *provider == "" || *providerURL == "" {
		return errors.New("contract verify: --provider and --provider-url are required")
	}
	v := &contract.Verifier{Provider: *provider, BaseURL: *providerURL, StateChangeURL: *stateURL}
	var (
		rep *contract.Report
		err error
	)
	if fs.NArg() > 0 {
		files, err := pactFiles(fs.Args())
		if err != nil {
			return err
		}
		if rep, err = v.VerifyFiles(ctx, files...); err != nil {
			return err
		}
	} else {
		c, ep, err := bf.client("contract verify")
		if err != nil {
			return fmt.Errorf("%w (or give pact files)", err)
		}
		src := contract.BrokerSource{Client: c, ProviderVersion: *version, ProviderBranch: *branch, IncludePending: *pending, Publish: *publish, BuildURL: *buildURL}
		for _, s := range selectors {
			var sel contract.Selector
			dec := json.NewDecoder(strings.NewReader(s))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&sel); err != nil {
				return fmt.Errorf("contract verify: --selector %s: %w", s, err)
			}
			src.Selectors = append(src.Selectors, sel)
		}
		if *wip != "" {
			t, err := time.Parse("2006-01-02", *wip)
			if err != nil {
				if t, err = time.Parse(time.RFC3339, *wip); err != nil {
					return fmt.Errorf("contract verify: --include-wip-since: %q is not a date", *wip)
				}
			}
			src.IncludeWIPSince = t
		}
		if rep, err = v.VerifyBroker(ctx, src); err != nil {
			return fmt.Errorf("contract verify: %w", ep.explain(err))
		}
	}
	if *bf.json {
		type res struct {
			Consumer    string              `json:"consumer"`
			Provider    string              `json:"provider"`
			Interaction string              `json:"interaction"`
			States      []string            `json:"states,omitempty"`
			Pending     bool                `json:"pending"`
			Success     bool                `json:"success"`
			Error       string              `json:"error,omitempty"`
			Mismatches  []contract.Mismatch `json:"mismatches,omitempty"`
		}
		out := struct {
			Success bool  `json:"success"`
			Results []res `json:"results"`
		}{Success: rep.Err() == nil}
		for _, r := range rep.Results {
			x := res{Consumer: r.Consumer, Provider: r.Provider, Interaction: r.Description, Pending: r.Pending, Success: r.OK(), Mismatches: r.Mismatches}
			for _, s := range r.States {
				x.States = append(x.States, s.Name)
			}
			if r.Err != nil {
				x.Error = r.Err.Error()
			}
			out.Results = append(out.Results, x)
		}
		if err := printJSON(stdout, out); err != nil {
			return err
		}
	} else {
		fmt.Fprint(stdout, rep.String())
	}
	if rep.Err() != nil {
		return errVerificationFailed
	}
	return err
}

func contractCanIDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("can-i-deploy", stderr)
	bf := addBrokerFlags(fs)
	p := fs.String("pacticipant", "", "the application to deploy")
	v := fs.String("version", "", "its version")
	env := fs.String("to-environment", "", "the environment to deploy to")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if *p == "" || *v == "" || *env == "" {
		return errors.New("contract can-i-deploy: --pacticipant, --version and --to-environment are required")
	}
	c, ep, err := bf.client("contract can-i-deploy")
	if err != nil {
		return err
	}
	verdict, err := c.CanIDeploy(ctx, *p, *v, *env)
	if err != nil {
		return fmt.Errorf("contract can-i-deploy: %w", ep.explain(err))
	}
	if *bf.json {
		if err := printJSON(stdout, verdict); err != nil {
			return err
		}
	} else {
		for _, r := range verdict.Reasons {
			mark := "ok  "
			if r.Blocking() {
				mark = "FAIL"
			}
			fmt.Fprintf(stdout, "%s %-21s %s\n", mark, r.Code, r.Text)
		}
		if verdict.Deployable {
			fmt.Fprintf(stdout, "yes: %s %s can be deployed to %s\n", *p, *v, *env)
		} else {
			fmt.Fprintf(stdout, "no: %s %s cannot be deployed to %s\n", *p, *v, *env)
		}
	}
	if !verdict.Deployable {
		return errNotDeployable
	}
	return nil
}

func contractRecordDeployment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("record-deployment", stderr)
	bf := addBrokerFlags(fs)
	p := fs.String("pacticipant", "", "the application deployed")
	v := fs.String("version", "", "its version")
	env := fs.String("environment", "", "the environment")
	instance := fs.String("application-instance", "", "the instance, when one environment runs several")
	release := fs.Bool("release", false, "record a release (versions released stay supported side by side) rather than a deployment")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if *p == "" || *v == "" || *env == "" {
		return errors.New("contract record-deployment: --pacticipant, --version and --environment are required")
	}
	c, ep, err := bf.client("contract record-deployment")
	if err != nil {
		return err
	}
	if err := c.RecordDeployment(ctx, *p, *v, *env, *instance, *release); err != nil {
		if errors.Is(err, contract.ErrEnvironmentNotFound) {
			return fmt.Errorf("contract record-deployment: %w (create it with: handoff contract create-environment --name %s)", err, *env)
		}
		return fmt.Errorf("contract record-deployment: %w", ep.explain(err))
	}
	what := "deployment"
	if *release {
		what = "release"
	}
	if *bf.json {
		return printJSON(stdout, map[string]any{"pacticipant": *p, "version": *v, "environment": *env, "applicationInstance": *instance, "kind": what})
	}
	fmt.Fprintf(stdout, "recorded the %s of %s %s to %s\n", what, *p, *v, *env)
	return nil
}

func contractCreateEnvironment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("create-environment", stderr)
	bf := addBrokerFlags(fs)
	name := fs.String("name", "", "the environment's name")
	prod := fs.Bool("production", false, "it is a production environment")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("contract create-environment: --name is required")
	}
	c, ep, err := bf.client("contract create-environment")
	if err != nil {
		return err
	}
	if err := c.CreateEnvironment(ctx, *name, *prod); err != nil {
		return fmt.Errorf("contract create-environment: %w", ep.explain(err))
	}
	if *bf.json {
		return printJSON(stdout, map[string]any{"name": *name, "production": *prod})
	}
	fmt.Fprintf(stdout, "created environment %s\n", *name)
	return nil
}

func contractBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("broker", stderr)
	dbSpec := fs.String("db", envOr("HANDOFF_DB", ""), "database: "+dbForms+" (env HANDOFF_DB)")
	addr := fs.String("addr", envOr("HANDOFF_BROKER_ADDR", "127.0.0.1:9292"), "listen address (env HANDOFF_BROKER_ADDR)")
	token := fs.String("token", envOr("HANDOFF_BROKER_TOKEN", ""), "admin token (every route) (env HANDOFF_BROKER_TOKEN)")
	tokenFile := fs.String("token-file", envOr("HANDOFF_BROKER_TOKEN_FILE", ""), tokenFileHelp+" (env HANDOFF_BROKER_TOKEN_FILE)")
	openReads := fs.Bool("open-reads", true, "let reads through without the token")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	scoped, err := readTokenFile(*tokenFile, *token, log)
	if err != nil {
		return fmt.Errorf("contract broker: %w", err)
	}
	db, err := openDB(ctx, "db", *dbSpec, dbOpen{migrate: true})
	if err != nil {
		return fmt.Errorf("contract broker: %w", err)
	}
	defer db.Close()
	opts := []broker.Option{broker.WithLogger(log)}
	for _, t := range scoped {
		opts = append(opts, broker.WithScopedToken(t.Scope.String(), t.Token))
	}
	if *token != "" {
		opts = append(opts, broker.WithToken(*token))
	}
	if *token != "" || len(scoped) > 0 {
		opts = append(opts, broker.WithOpenReads(*openReads))
	} else {
		log.Warn("contract broker: no --token nor --token-file: anyone who can reach the port may publish pacts and results")
	}
	b, err := broker.New(db.contractStore(), opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("contract broker: listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "contract broker  http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "database         %s\n", redact(*dbSpec))
	return serveUntilDone(ctx, ln, guard(*addr, "").Wrap(b))
}
