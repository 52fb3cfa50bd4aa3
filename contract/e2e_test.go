package contract_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/contract"
)

// The consumer's client code: what a real service would have.
type order struct {
	ID     int64   `json:"id"`
	Status string  `json:"status"`
	Total  float64 `json:"total"`
	Items  []struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	} `json:"items"`
}

func fetchOrder(base string, id int64) (*order, error) {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/orders/%d", base, id), nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var o order
	return &o, json.NewDecoder(resp.Body).Decode(&o)
}

// The provider: a real http.Handler over a store the state hooks fill.
type orderStore struct {
	mu     sync.Mutex
	orders map[int64]map[string]any
}

func (s *orderStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var id int64
	if _, err := fmt.Sscanf(r.URL.Path, "/orders/%d", &id); err != nil || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	o, ok := s.orders[id]
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"no such order"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(o)
}

func (s *orderStore) states() map[string]contract.StateHandler {
	return map[string]contract.StateHandler{
		"an order exists": func(ctx context.Context, st contract.StateChange) (map[string]any, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !st.Setup {
				s.orders = map[int64]map[string]any{}
				return nil, nil
			}
			// The provider picks its own id; FromProviderState carries it
			// into the request path.
			id := int64(4711)
			s.orders[id] = map[string]any{"id": id, "status": "paid", "total": 99.5,
				"items": []any{map[string]any{"sku": "A-1", "qty": 2}, map[string]any{"sku": "B-22", "qty": 1}}}
			return map[string]any{"id": id}, nil
		},
	}
}

// An outbox-like producer: the function the provider's code calls to
// write its event; the verifier calls it to get the message.
func orderPlacedEvent(id int64) *handoff.Message {
	m := handoff.NewMessage("/orders", "order.placed", []byte(fmt.Sprintf(`{"order":%d,"total":12.5,"placedAt":"2024-05-01T10:00:00Z"}`, id)))
	m.Subject = "orders-value"
	return m
}

// TestConsumerAndProviderInOneBinary runs a consumer test (HTTP and a
// message) and the provider's verification of the pact it wrote, in one
// test binary. The contract package needs no native library and no cgo:
// TestPureGoWithoutCgo runs this test again with CGO_ENABLED=0.
func TestConsumerAndProviderInOneBinary(t *testing.T) {
	dir := t.TempDir()
	c := contract.NewConsumer(t, "web", "orders", contract.WithPactDir(dir))

	c.UponReceiving("a request for an order").
		Given("an order exists", contract.Params{"status": "paid"}).
		WithRequest("GET", contract.FromProviderState("/orders/${id}", "/orders/7")).
		Header("Accept", "application/json").
		WillRespondWith(200).
		Header("Content-Type", contract.Regex(`application/json.*`, "application/json")).
		JSON(map[string]any{
			"id":     contract.FromProviderState("${id}", 7),
			"status": contract.Regex("pending|paid|shipped", "paid"),
			"total":  contract.Decimal(12.5),
			"items":  contract.EachLike(map[string]any{"sku": contract.Like("A-1"), "qty": contract.Integer(1)}, 1),
		})
	c.Run(func(base string) error {
		o, err := fetchOrder(base, 7)
		if err != nil {
			return err
		}
		if o.Status != "paid" || len(o.Items) != 1 {
			return fmt.Errorf("unexpected order %+v", o)
		}
		return nil
	})

	var got []string
	var mux consumer.Mux
	mux.On("order.placed", consumer.JSON(func(ctx context.Context, m *handoff.Message, v struct {
		Order int64
		Total float64
	}) error {
		if v.Order == 0 {
			return handoff.Permanent(errors.New("order id missing"))
		}
		got = append(got, fmt.Sprint(v.Order))
		return nil
	}))
	c.ExpectsToReceive("an order placed event").
		Given("an order exists").
		WithJSON(map[string]any{
			"order":    contract.Integer(7),
			"total":    contract.Number(12.5),
			"placedAt": contract.Timestamp("yyyy-MM-dd'T'HH:mm:ssXXX", "2024-05-01T10:00:00Z"),
		}).
		WithMetadata(map[string]any{"type": "order.placed", "subject": contract.Regex(`.+-value`, "orders-value")}).
		Handle(&mux)
	if len(got) != 1 {
		t.Fatalf("handler called %d times", len(got))
	}
	if t.Failed() {
		t.FailNow()
	}

	b, err := os.ReadFile(c.PactPath())
	if os.Getenv("DUMP") != "" {
		t.Logf("%s", b)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := contract.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec != contract.V4 || len(p.Interactions) != 2 {
		t.Fatalf("pact: spec %v, %d interactions, want V4 with 2", p.Spec, len(p.Interactions))
	}

	store := &orderStore{orders: map[int64]map[string]any{}}
	v := &contract.Verifier{
		Provider: "orders",
		Handler:  store,
		States:   store.states(),
		Messages: map[string]contract.MessageProducer{
			"an order placed event": func(ctx context.Context, r contract.MessageRequest) (*handoff.Message, error) {
				return orderPlacedEvent(4711), nil
			},
		},
	}
	rep, err := v.VerifyFiles(context.Background(), c.PactPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("verification failed:\n%v", err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2", len(rep.Results))
	}

	// The same pact fails against a provider that broke it.
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":4711,"status":"lost","total":"12.50","items":[]}`))
	})
	v.Handler = broken
	v.Messages["an order placed event"] = func(ctx context.Context, r contract.MessageRequest) (*handoff.Message, error) {
		m := orderPlacedEvent(1)
		m.Type = "order.created"
		return m, nil
	}
	rep, err = v.VerifyFiles(context.Background(), c.PactPath())
	if err != nil {
		t.Fatal(err)
	}
	verr := rep.Err()
	if verr == nil {
		t.Fatal("a broken provider verified")
	}
	msg := verr.Error()
	for _, want := range []string{
		`web → orders: "a request for an order" given "an order exists"`,
		`body $.status: "lost" does not match regex "pending|paid|shipped"`,
		`body $.total: expected a decimal number, got "12.50" (matcher: decimal)`,
		`body $.items: expected an array of at least 1 elements, got 0 (matcher: type, min 1)`,
		`web → orders: "an order placed event"`,
		`metadata type: expected "order.placed", got "order.created" (matcher: equality)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("verification error lacks %q:\n%s", want, msg)
		}
	}
}

// TestPureGoWithoutCgo runs the consumer-and-provider test with
// CGO_ENABLED=0: no native library, no cgo.
func TestPureGoWithoutCgo(t *testing.T) {
	if os.Getenv("HANDOFF_CONTRACT_CHILD") != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("builds a test binary")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("go command not found")
		}
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		// The standard library builds without cgo (net falls back to
		// its pure-Go resolver); nothing else may need it.
		if len(f) == 3 && f[1] == "false" && f[2] != "0" {
			t.Errorf("contract depends on %s, which has cgo files", f[0])
		}
	}
	cmd := exec.Command(goBin, "test", "-count=1", "-run", "^TestConsumerAndProviderInOneBinary$", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "HANDOFF_CONTRACT_CHILD=1")
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("CGO_ENABLED=0 go test: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ok") {
		t.Fatalf("CGO_ENABLED=0 go test ran nothing:\n%s", out)
	}
}
