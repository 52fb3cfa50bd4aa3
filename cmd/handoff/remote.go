package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/registry"
)

// remotePage is how many letters dlq list asks the server for at once.
var remotePage = dlq.MaxPage

// apiError is a server's refusal: its status and message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.msg)
}

// gone reports a letter replayed or deleted meanwhile by someone else.
func gone(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && (ae.status == http.StatusNotFound || ae.status == http.StatusConflict) ||
		errors.Is(err, dlq.ErrNotFound) || errors.Is(err, dlq.ErrAlreadyReplayed)
}

// endpoint is where a command sends its requests (a handoff server, a
// registry, a contract broker) and what to tell the user when one fails.
type endpoint struct {
	url      string // as the user gave it
	what     string // "handoff serve or handoff dev", "the schema registry", ...
	tokenEnv string // the environment variable --token defaults to
}

// statusOf is the HTTP status of a refusal by any of the clients the
// commands use, 0 when err is not one.
func statusOf(err error) int {
	var ae *apiError
	var re *registry.Error
	var be *contract.BrokerError
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.As(err, &re):
		return re.HTTPStatus()
	case errors.As(err, &be):
		return be.Status
	}
	return 0
}

// explain adds to err what to do next: give the token, a token of
// another scope, or start the server. Other errors come back as they are.
func (e endpoint) explain(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	switch statusOf(err) {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w (give the token with --token or %s)", err, e.tokenEnv)
	case http.StatusForbidden:
		return fmt.Errorf("%w (give --token a token of the scope named)", err)
	case 0:
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) {
			return fmt.Errorf("%w (is %s running at %s?)", err, e.what, e.url)
		}
	}
	return err
}

// target is the flags naming where a command's requests go: --server (a
// handoff server, its part under a path) or the part's own URL flag
// (--registry, --broker), and --token.
type target struct {
	fs                 *flag.FlagSet
	server, part       *string
	token              *string
	partFlag           string   // "registry"
	partEnvs           []string // "HANDOFF_REGISTRY_URL"
	partTokenEnvs      []string
	partWhat, partPath string // "the schema registry", "/registry"

	chosenServer string // after resolve: the server chosen, if one was
}

// addTarget adds --server, --PART and --token to fs. partEnvs are the
// environment variables --PART defaults to, tokenEnvs those --token
// defaults to with --PART, each in order.
func addTarget(fs *flag.FlagSet, partFlag, partWhat, partPath string, partEnvs, tokenEnvs []string) *target {
	t := &target{fs: fs, partFlag: partFlag, partEnvs: partEnvs, partWhat: partWhat, partPath: partPath, partTokenEnvs: tokenEnvs}
	t.server = fs.String("server", "", "a handoff server (serve or dev), e.g. http://127.0.0.1:8477: "+partWhat+" at URL"+partPath+" (env HANDOFF_SERVER)")
	t.part = fs.String(partFlag, "", partWhat+"'s own URL, instead of --server (env "+strings.Join(partEnvs, " or ")+")")
	t.token = fs.String("token", "", "bearer token (env HANDOFF_TOKEN with --server; "+strings.Join(tokenEnvs, " or ")+" with --"+partFlag+")")
	return t
}

// resolve returns the base URL to send requests to, the token, and the
// endpoint that explains failures. A flag on the command line beats the
// environment; of two URLs from the environment, the part's own (which
// names the part) beats HANDOFF_SERVER; both flags on the command line is
// an error. ok is false when neither is given.
func (t *target) resolve(cmd string) (base, token string, ep endpoint, ok bool, err error) {
	set := map[string]bool{}
	t.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	server, part := *t.server, *t.part
	switch {
	case set["server"] && set[t.partFlag]:
		return "", "", endpoint{}, false, fmt.Errorf("%s: give --server or --%s, not both", cmd, t.partFlag)
	case set["server"]:
		part = ""
	case set[t.partFlag]:
		server = ""
	default:
		for _, e := range t.partEnvs {
			if part == "" {
				part = os.Getenv(e)
			}
		}
		if server = ""; part == "" {
			server = os.Getenv("HANDOFF_SERVER")
		}
	}
	envs := append([]string{"HANDOFF_TOKEN"}, t.partTokenEnvs...)
	if server == "" {
		envs = append(append([]string{}, t.partTokenEnvs...), "HANDOFF_TOKEN")
	}
	token = *t.token
	for _, e := range envs {
		if token != "" || set["token"] {
			break
		}
		token = os.Getenv(e)
	}
	t.chosenServer = server
	switch {
	case server != "":
		s, err := newAPIServer(cmd, server, token)
		if err != nil {
			return "", "", endpoint{}, false, err
		}
		return s.base.JoinPath(t.partPath).String(), token, s.endpoint, true, nil
	case part != "":
		return part, token, endpoint{url: part, what: t.partWhat, tokenEnv: envs[0]}, true, nil
	}
	return "", "", endpoint{}, false, nil
}

// apiServer is a running handoff server's HTTP API (handoff serve's or
// dev's), for the --server of dlq, saga and topology; schema and contract
// reach the server's registry and broker through their own clients, with
// target choosing the URL and endpoint explaining their failures.
type apiServer struct {
	endpoint
	server, token string
	base          *url.URL
}

func newAPIServer(cmd, server, token string) (*apiServer, error) {
	base, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%s: --server %q: must be the server's http or https URL, e.g. http://127.0.0.1:8477", cmd, server)
	}
	return &apiServer{endpoint: serverEndpoint(server), server: server, token: token, base: base}, nil
}

func serverEndpoint(server string) endpoint {
	return endpoint{url: server, what: "handoff serve or handoff dev", tokenEnv: "HANDOFF_TOKEN"}
}

// dlqServer is a server's /dead-letters API.
type dlqServer struct{ *apiServer }

func newDLQServer(cmd, server, token string) (*dlqServer, error) {
	s, err := newAPIServer("dlq "+cmd, server, token)
	return &dlqServer{s}, err
}

// do makes one request and decodes a 2xx JSON answer into v (when not
// nil); it returns the Link header. Its errors say what to do next.
func (s *apiServer) do(ctx context.Context, method, u, contentType string, body []byte, v any) (string, error) {
	b, link, err := s.call(ctx, method, u, contentType, body)
	if err != nil || v == nil || b == nil {
		return link, s.explain(err)
	}
	return link, json.Unmarshal(b, v)
}

// call makes one request and returns a 2xx answer's body (nil for 204)
// and Link header; another answer is an *apiError.
func (s *apiServer) call(ctx context.Context, method, u, contentType string, body []byte) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, "", err
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
		if res.StatusCode == http.StatusMethodNotAllowed && strings.HasPrefix(req.URL.Path, s.base.Path+"/dead-letters") {
			msg += " (this server's dead-letter API is read-only: use --db, or a handoff serve or dev of this version)"
		}
		return nil, "", &apiError{res.StatusCode, msg}
	}
	if res.StatusCode == http.StatusNoContent {
		b = nil
	}
	return b, res.Header.Get("Link"), nil
}

func (s *dlqServer) letterURL(id string, more ...string) string {
	return s.base.JoinPath(append([]string{"dead-letters", id}, more...)...).String()
}

func (s *dlqServer) get(ctx context.Context, id string) (*dlq.Letter, error) {
	var l dlq.Letter
	if _, err := s.do(ctx, http.MethodGet, s.letterURL(id), "", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// list returns the letters q selects, following the API's pages, at most
// want (all when want < 0).
func (s *dlqServer) list(ctx context.Context, q url.Values, want int) ([]*dlq.Letter, error) {
	if want != 0 {
		page := remotePage
		if want > 0 {
			page = min(want, remotePage)
		}
		q.Set("limit", strconv.Itoa(page))
	}
	u := s.base.JoinPath("dead-letters")
	u.RawQuery = q.Encode()
	var all []*dlq.Letter
	for next := u.String(); next != "" && (want < 0 || len(all) < want); {
		var page []*dlq.Letter
		link, err := s.do(ctx, http.MethodGet, next, "", nil, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		next = ""
		if ref, ok := strings.CutPrefix(link, "<"); ok {
			if ref, _, ok = strings.Cut(ref, ">"); ok {
				r, err := url.Parse(ref)
				if err != nil {
					return nil, fmt.Errorf("bad Link %q: %w", link, err)
				}
				next = u.ResolveReference(r).String()
			}
		}
	}
	if want >= 0 && len(all) > want {
		all = all[:want]
	}
	return all, nil
}

func (s *dlqServer) replay(ctx context.Context, id string) (*dlq.Letter, error) {
	var l dlq.Letter
	if _, err := s.do(ctx, http.MethodPost, s.letterURL(id, "replay"), "", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

func (s *dlqServer) remove(ctx context.Context, id string) error {
	_, err := s.do(ctx, http.MethodDelete, s.letterURL(id), "", nil, nil)
	return err
}

// remoteArgs are what dlqRemote needs of the parsed command line.
type remoteArgs struct {
	ff          filterFlags
	ids         []string
	asJSON      bool
	classifier  *dlq.Classifier
	all, dryRun bool
	errorText   string
	rate        float64
	data        string // edit: a file, or - for stdin
	contentType string
	incidents   bool // list: grouped by cause, gap apart
	gap         time.Duration
}

// dlqRemote runs a dlq command against a server's /dead-letters API
// instead of its database. The API pages lists; list follows the Link
// header until --limit letters (or all). Bulk replay and purge list the
// letters the filters select, then replay or delete them one by one.
func dlqRemote(ctx context.Context, cmd, server, token string, a remoteArgs, stdin io.Reader, stdout, stderr io.Writer) error {
	s, err := newDLQServer(cmd, server, token)
	if err != nil {
		return err
	}
	selected := func(state string) ([]*dlq.Letter, error) {
		q := url.Values{}
		for k, v := range a.ff {
			if *v != "" {
				q.Set(k, *v)
			}
		}
		if state != "" {
			q.Set("state", state)
		}
		want := -1
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--limit %q: must be a whole number >= 0", v)
			}
			want = n
		}
		if a.errorText == "" {
			return s.list(ctx, q, want)
		}
		// The server knows no error filter: list all, then keep --limit
		// of the matching ones.
		q.Del("limit")
		ls, err := s.list(ctx, q, -1)
		ls = matchingError(ls, a.errorText)
		if want >= 0 && len(ls) > want {
			ls = ls[:want]
		}
		return ls, err
	}
	switch cmd {
	case "show":
		l, err := s.get(ctx, a.ids[0])
		if err != nil {
			return fmt.Errorf("dlq show %s: %w", a.ids[0], err)
		}
		if a.asJSON {
			b, err := dlq.MarshalDiagnosed(l, a.classifier)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		printLetter(stdout, l, a.classifier)
		return nil
	case "list":
		if a.incidents {
			return s.incidents(ctx, a, selected, server, stdout, stderr)
		}
		all, err := selected("")
		if err != nil {
			return fmt.Errorf("dlq list: %w", err)
		}
		if a.asJSON {
			b, err := dlq.MarshalListDiagnosed(all, a.classifier)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		printList(stdout, all, a.classifier)
		if len(all) == 0 {
			fmt.Fprintln(stderr, "no dead letters")
		} else {
			fmt.Fprintf(stderr, "%d dead letters; see one with: handoff dlq show ID --server %s\n", len(all), server)
		}
		return nil
	case "edit":
		body, err := readData(a.data, stdin)
		if err != nil {
			return err
		}
		var l dlq.Letter
		_, err = s.do(ctx, http.MethodPut, s.letterURL(a.ids[0], "data"), a.contentType, body, &l)
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusUnsupportedMediaType {
			return fmt.Errorf("dlq edit %s: %w\n(the server takes JSON bodies only: give a JSON --content-type, or none to keep the letter's, or edit through --db)", a.ids[0], err)
		}
		if err != nil {
			return fmt.Errorf("dlq edit %s: %w", a.ids[0], err)
		}
		fmt.Fprintf(stdout, "edited %s (%d bytes of data); send it back with: handoff dlq replay %s --server %s\n", a.ids[0], len(body), a.ids[0], server)
		return nil
	case "replay":
		if !a.all {
			var errs []error
			for _, id := range a.ids {
				l, err := s.replay(ctx, id)
				if err != nil {
					errs = append(errs, fmt.Errorf("dlq replay %s: %w", id, err))
					continue
				}
				fmt.Fprintf(stdout, "replayed %s to %s (message %s)\n", id, replayedTo(l), l.Message.ID)
			}
			return errors.Join(errs...)
		}
		ls, err := selected("open")
		if err != nil {
			return fmt.Errorf("dlq replay: %w", err)
		}
		return bulk(ctx, "replay", ls, a.dryRun, a.rate, func(ctx context.Context, id string) error {
			_, err := s.replay(ctx, id)
			return err
		}, stdout, stderr)
	case "purge":
		ls, err := selected("")
		if err != nil {
			return fmt.Errorf("dlq purge: %w", err)
		}
		return bulk(ctx, "purge", ls, a.dryRun, 0, s.remove, stdout, stderr)
	}
	return fmt.Errorf("dlq %s: unknown command", cmd)
}

// incidents prints the letters the filters select grouped into incidents:
// as the server groups them (GET /dead-letters/incidents), or, with
// --error or --rules (which the server does not know), grouped here from
// the letters listed.
func (s *dlqServer) incidents(ctx context.Context, a remoteArgs, selected func(string) ([]*dlq.Letter, error), server string, stdout, stderr io.Writer) error {
	var in []dlq.Incident
	n := 0
	if a.errorText != "" || a.classifier != dlq.DefaultClassifier {
		ls, err := selected("")
		if err != nil {
			return fmt.Errorf("dlq list --incidents: %w", err)
		}
		in, n = dlq.Incidents(ls, a.classifier, a.gap), len(ls)
	} else {
		q := url.Values{}
		for k, v := range a.ff {
			if *v != "" {
				q.Set(k, *v)
			}
		}
		if a.gap > 0 {
			q.Set("gap", a.gap.String())
		}
		u := s.base.JoinPath("dead-letters", "incidents")
		u.RawQuery = q.Encode()
		if _, err := s.do(ctx, http.MethodGet, u.String(), "", nil, &in); err != nil {
			return fmt.Errorf("dlq list --incidents: %w", err)
		}
		for _, x := range in {
			n += x.Count
		}
	}
	if a.asJSON {
		if in == nil {
			in = []dlq.Incident{}
		}
		return printJSON(stdout, in)
	}
	printIncidents(stdout, in)
	fmt.Fprintf(stderr, "%d dead letters in %d incident(s); see one with: handoff dlq show ID --server %s\n", n, len(in), server)
	return nil
}

func readData(path string, stdin io.Reader) ([]byte, error) {
	var body []byte
	var err error
	if path == "-" {
		body, err = io.ReadAll(io.LimitReader(stdin, 64<<20))
	} else {
		body, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("dlq edit: --data: %w", err)
	}
	return body, nil
}

func replayedTo(l *dlq.Letter) string {
	if l.Consumer == dlq.RelayConsumer {
		return "topic " + l.Topic
	}
	return "group " + l.Consumer + " of " + l.Topic
}
