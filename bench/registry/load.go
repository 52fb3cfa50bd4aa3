package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const contentType = "application/vnd.schemaregistry.v1+json"

// client is an HTTP client of the registry with conns keep-alive connections.
type client struct {
	base string
	hc   *http.Client
}

func newClient(base string, conns int) *client {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &client{base: base, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// httpError is a response with an unexpected status.
type httpError struct {
	method, path string
	status       int
	body         string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.path, e.status, e.body)
}

// do sends a request and returns the body of a 200 response; any other
// status is an *httpError.
func (c *client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &httpError{method, path, resp.StatusCode, string(b)}
	}
	return b, nil
}

// json sends v as the JSON body and decodes a 200 response into out (if
// not nil).
func (c *client) json(ctx context.Context, method, path string, v, out any) error {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return err
		}
	}
	b, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// loadResult is one closed-loop window.
type loadResult struct {
	n       int             // requests that started after the warm-up and ended in the window
	errs    int             // failed requests in the window
	firstEr error           // the first failure, if any
	window  time.Duration   // measured window (without the warm-up)
	lat     []time.Duration // sorted latencies of the n requests
	cpu     cpuUse          // over the measured window
}

func (r loadResult) rate() float64 { return float64(r.n) / r.window.Seconds() }

func (r loadResult) q(p float64) time.Duration { return quantile(r.lat, p) }

// closedLoop runs conns workers, each sending its next request as soon as
// the previous one is answered, for warm+dur. Only requests that start after
// the warm-up and end before the window closes are counted. serverPID is
// sampled for CPU time at the start and end of the measured window.
func closedLoop(ctx context.Context, conns int, warm, dur time.Duration, serverPID int,
	do func(ctx context.Context, worker int, seq int64) error) loadResult {
	start := time.Now()
	warmEnd, end := start.Add(warm), start.Add(warm+dur)
	var seq atomic.Int64
	lats := make([][]time.Duration, conns)
	errs := make([]int, conns)
	var firstErr atomic.Pointer[error]
	var cpu0, cpu1 cpuSample
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		time.Sleep(time.Until(warmEnd))
		cpu0 = sampleCPU(serverPID)
		time.Sleep(time.Until(end))
		cpu1 = sampleCPU(serverPID)
	}()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				err := do(ctx, w, seq.Add(1)-1)
				t1 := time.Now()
				if t0.Before(warmEnd) || t1.After(end) {
					continue
				}
				if err != nil {
					errs[w]++
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				lat = append(lat, t1.Sub(t0))
			}
			lats[w] = lat
		}()
	}
	wg.Wait()
	sampled.Wait()
	r := loadResult{window: dur, cpu: cpuBetween(cpu0, cpu1)}
	for w := range conns {
		r.lat = append(r.lat, lats[w]...)
		r.errs += errs[w]
	}
	if p := firstErr.Load(); p != nil {
		r.firstEr = *p
	}
	slices.Sort(r.lat)
	r.n = len(r.lat)
	return r
}

func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
