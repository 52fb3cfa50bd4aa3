package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/handoffhq/handoff/dlq"
)

// matchingError keeps the letters one of whose errors contains text,
// ignoring case; all of them when text is empty.
func matchingError(ls []*dlq.Letter, text string) []*dlq.Letter {
	if text == "" {
		return ls
	}
	text = strings.ToLower(text)
	var out []*dlq.Letter
	for _, l := range ls {
		for _, e := range l.Errors {
			if strings.Contains(strings.ToLower(e), text) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// bulk replays or purges (verb) the letters ls one by one through do, at
// most rate a second (0: no limit), drawing a progress bar on stderr. A
// letter replayed or deleted meanwhile by someone else is skipped; any
// other error stops the run and says how far it got. With dryRun it only
// prints what it would do.
func bulk(ctx context.Context, verb string, ls []*dlq.Letter, dryRun bool, rate float64, do func(context.Context, string) error, stdout, stderr io.Writer) error {
	past := map[string]string{"replay": "replayed", "purge": "purged"}[verb]
	if dryRun {
		printList(stdout, ls, dlq.DefaultClassifier)
		fmt.Fprintf(stdout, "would %s %d dead letters (dry run: nothing was changed)\n", verb, len(ls))
		return nil
	}
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	done, skipped := 0, 0
	bar := func(i int) {
		const width = 30
		filled := width
		if len(ls) > 0 {
			filled = width * i / len(ls)
		}
		fmt.Fprintf(stderr, "\r[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat("-", width-filled), i, len(ls), past)
	}
	bar(0)
	for i, l := range ls {
		if tick != nil && i > 0 {
			select {
			case <-tick:
			case <-ctx.Done():
			}
		}
		err := ctx.Err()
		if err == nil {
			err = do(ctx, l.ID)
		}
		switch {
		case err == nil:
			done++
		case gone(err):
			skipped++
		default:
			fmt.Fprintln(stderr)
			fmt.Fprintf(stdout, "%s %d of %d\n", past, done, len(ls))
			return fmt.Errorf("dlq %s: stopped at %s: %w (the %d letters left are untouched: run the same command again to go on)", verb, l.ID, err, len(ls)-i)
		}
		bar(i + 1)
	}
	fmt.Fprintln(stderr)
	if skipped > 0 {
		fmt.Fprintf(stdout, "%s %d (%d skipped: replayed or deleted meanwhile)\n", past, done, skipped)
	} else {
		fmt.Fprintf(stdout, "%s %d\n", past, done)
	}
	return nil
}

// selectLetters lists the letters of q that f selects and one of whose
// errors contains text; f.Limit counts the matching letters.
func selectLetters(ctx context.Context, q *dlq.Queue, f dlq.Filter, text string) ([]*dlq.Letter, error) {
	limit := f.Limit
	if text != "" {
		f.Limit = 0
	}
	ls, err := q.List(ctx, f)
	if err != nil {
		return nil, err
	}
	if ls = matchingError(ls, text); limit > 0 && len(ls) > limit {
		ls = ls[:limit]
	}
	return ls, nil
}
