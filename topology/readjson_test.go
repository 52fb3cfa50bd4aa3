package topology_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/topology"
)

// A graph read back from its JSON export writes every export as the
// original did: the golden files of the sample, declared and observed.
func TestReadJSON_RoundTripsTheExports(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "sample.json"))
	must(t, err)
	defer f.Close()
	g, err := topology.ReadJSON(f)
	must(t, err)
	for _, x := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"sample.json", func(b *bytes.Buffer) error { return g.WriteJSON(b) }},
		{"sample.dot", func(b *bytes.Buffer) error { return g.WriteDOT(b) }},
		{"sample.mmd", func(b *bytes.Buffer) error { return g.WriteMermaid(b) }},
		{"sample.svg", func(b *bytes.Buffer) error { return g.WriteSVG(b) }},
	} {
		var b bytes.Buffer
		must(t, x.write(&b))
		want, err := os.ReadFile(filepath.Join("testdata", x.file))
		must(t, err)
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s from the read graph differs from the golden file; got:\n%s", x.file, b.Bytes())
		}
	}
}

// Bad documents are refused, naming the field and the rule.
func TestReadJSON_RefusesBadDocuments(t *testing.T) {
	for doc, want := range map[string]string{
		`{"nodes":[{"id":"","kind":"service"}]}`:                                                                                    "nodes[0].id: must not be empty",
		`{"nodes":[{"id":"a","kind":"queue"}]}`:                                                                                     `nodes[0].kind: "queue" must be service or topic`,
		`{"nodes":[{"id":"a","kind":"service"},{"id":"a","kind":"topic"}]}`:                                                         `nodes[1].id: "a" appears twice`,
		`{"nodes":[{"id":"a","kind":"service"}],"edges":[{"from":"a","to":"b","kind":"sync"}]}`:                                     `edges[0].to: "b" is not a node`,
		`{"nodes":[{"id":"a","kind":"service"}],"edges":[{"from":"x","to":"a","kind":"sync"}]}`:                                     `edges[0].from: "x" is not a node`,
		`{"nodes":[{"id":"a","kind":"service"}],"edges":[{"from":"a","to":"a","kind":"carrier"}]}`:                                  `edges[0].kind: "carrier" must be sync or async`,
		`{"nodes":[{"id":"a","kind":"service"}],"edges":[{"from":"a","to":"a","kind":"sync"},{"from":"a","to":"a","kind":"sync"}]}`: "edges[1]: a -> a (sync) appears twice",
		`[`: "read JSON",
	} {
		if _, err := topology.ReadJSON(strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}

// Whatever ReadJSON takes, it never panics, and a graph it reads writes a
// JSON export that reads back to the same export.
func FuzzReadJSON(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "sample.json"))
	must(f, err)
	f.Add(b)
	f.Add([]byte(`{"nodes":[{"id":"a","kind":"service"}],"edges":[{"from":"a","to":"a","kind":"sync"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		g, err := topology.ReadJSON(bytes.NewReader(doc))
		if err != nil {
			return
		}
		var one, two bytes.Buffer
		must(t, g.WriteJSON(&one))
		g2, err := topology.ReadJSON(bytes.NewReader(one.Bytes()))
		if err != nil {
			t.Fatalf("its own export refused: %v\n%s", err, one.Bytes())
		}
		must(t, g2.WriteJSON(&two))
		if !bytes.Equal(one.Bytes(), two.Bytes()) {
			t.Fatalf("export changed on a second read:\n%s\n%s", one.Bytes(), two.Bytes())
		}
	})
}
