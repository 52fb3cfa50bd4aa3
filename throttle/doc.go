// Package throttle is adaptive client-side throttling, as in the Google SRE
// book ("Handling Overload"): a client that sees its backend reject many
// requests starts rejecting some of them itself, before they cost the
// backend anything.
//
// Minimal call sequence:
//
//	t, _ := throttle.New("search") // K = 2, window 2 minutes
//	if err := t.Allow(); err != nil { return err } // throttle.ErrThrottled
//	err := call()
//	t.Record(!isOverload(err))
//
// Over the window, with requests counted by Allow and accepts by Record, a
// request is rejected locally with probability
// max(0, (requests − K·accepts) / (requests + 1)). While the backend accepts
// everything the probability is 0; when it accepts nothing, almost every
// request is rejected locally, yet a few still go through to notice the
// recovery.
//
// It reads a coarse clock (no time.Now) and sums a dozen buckets per call. It
// does not classify errors: report as not accepted only overload answers.
package throttle
