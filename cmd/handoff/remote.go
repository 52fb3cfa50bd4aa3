package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/dlq"
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

// dlqServer is a server's /dead-letters API (handoff dev's or serve's).
type dlqServer struct {
	server, token string
	base          *url.URL
}

func newDLQServer(cmd, server, token string) (*dlqServer, error) {
	base, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("dlq %s: --server %q: must be the server's http or https URL, e.g. http://127.0.0.1:8477", cmd, server)
	}
	return &dlqServer{server: server, token: token, base: base}, nil
}

// do makes one request and decodes a 2xx JSON answer into v (when not
// nil); it returns the Link header.
func (s *dlqServer) do(ctx context.Context, method, u, contentType string, body []byte, v any) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("is the server running at %s? %w", s.server, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return "", err
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
		case http.StatusMethodNotAllowed:
			msg += " (this server's dead-letter API is read-only, as handoff dev's is: use --db, or a handoff serve)"
		}
		return "", &apiError{res.StatusCode, msg}
	}
	if v == nil || res.StatusCode == http.StatusNoContent {
		return res.Header.Get("Link"), nil
	}
	return res.Header.Get("Link"), json.Unmarshal(b, v)
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
