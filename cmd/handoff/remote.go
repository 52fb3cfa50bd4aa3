package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/dlq"
)

// remotePage is how many letters dlq list asks the server for at once.
var remotePage = dlq.MaxPage

// dlqRemote runs dlq list and show against a server's /dead-letters API
// (handoff dev's or serve's), instead of its database. The API pages
// lists; list follows the Link header until --limit letters (or all).
func dlqRemote(ctx context.Context, cmd, server, token string, ff filterFlags, id string, asJSON bool, classifier *dlq.Classifier, stdout, stderr io.Writer) error {
	base, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("dlq %s: --server %q: must be the server's http or https URL, e.g. http://127.0.0.1:8477", cmd, server)
	}
	get := func(u string, v any) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", fmt.Errorf("is the server running at %s? %w", server, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
		if err != nil {
			return "", err
		}
		if res.StatusCode != http.StatusOK {
			var e struct{ Error string }
			if json.Unmarshal(body, &e) == nil && e.Error != "" {
				return "", fmt.Errorf("%s: %s", res.Status, e.Error)
			}
			return "", fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(body)))
		}
		return res.Header.Get("Link"), json.Unmarshal(body, v)
	}
	switch cmd {
	case "show":
		var l dlq.Letter
		if _, err := get(base.JoinPath("dead-letters", id).String(), &l); err != nil {
			return fmt.Errorf("dlq show %s: %w", id, err)
		}
		if asJSON {
			b, err := dlq.MarshalDiagnosed(&l, classifier)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		printLetter(stdout, &l, classifier)
		return nil
	case "list":
		q := url.Values{}
		for k, v := range ff {
			if *v != "" {
				q.Set(k, *v)
			}
		}
		want := -1
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return fmt.Errorf("dlq list: --limit %q: must be a whole number >= 0", s)
			}
			want = n
		}
		if want != 0 {
			page := remotePage
			if want > 0 {
				page = min(want, remotePage)
			}
			q.Set("limit", strconv.Itoa(page))
		}
		u := base.JoinPath("dead-letters")
		u.RawQuery = q.Encode()
		var all []*dlq.Letter
		for next := u.String(); next != "" && (want < 0 || len(all) < want); {
			var page []*dlq.Letter
			link, err := get(next, &page)
			if err != nil {
				return fmt.Errorf("dlq list: %w", err)
			}
			all = append(all, page...)
			next = ""
			if ref, ok := strings.CutPrefix(link, "<"); ok {
				if ref, _, ok = strings.Cut(ref, ">"); ok {
					r, err := url.Parse(ref)
					if err != nil {
						return fmt.Errorf("dlq list: bad Link %q: %w", link, err)
					}
					next = u.ResolveReference(r).String()
				}
			}
		}
		if want >= 0 && len(all) > want {
			all = all[:want]
		}
		if asJSON {
			b, err := dlq.MarshalListDiagnosed(all, classifier)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		printList(stdout, all, classifier)
		if len(all) == 0 {
			fmt.Fprintln(stderr, "no dead letters")
		} else {
			fmt.Fprintf(stderr, "%d dead letters; see one with: handoff dlq show ID --server %s\n", len(all), server)
		}
		return nil
	}
	return errors.New("dlq " + cmd + " --server: only list and show go through the server's API yet; use --db for edit, replay and purge")
}
