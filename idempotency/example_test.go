package idempotency_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/handoffhq/handoff/idempotency"
)

func Example() {
	mw, err := idempotency.New(new(idempotency.MemoryStore))
	if err != nil {
		panic(err)
	}
	transfers := 0
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		transfers++
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "transfer #%d", transfers)
	}))
	send := func(body string) {
		req := httptest.NewRequest("POST", "/transfers", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", `"a2f0c1"`)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		line := fmt.Sprint(rec.Code, " ", strings.TrimSpace(rec.Body.String()), " ", rec.Header().Get("Idempotent-Replayed"))
		fmt.Println(strings.TrimSpace(line))
	}
	send("amount=30")
	send("amount=30") // a retry: replayed
	send("amount=99") // same key, different request
	fmt.Println("transfers:", transfers)
	// Output:
	// 201 transfer #1
	// 201 transfer #1 true
	// 422 Idempotency-Key was used with a different request
	// transfers: 1
}
