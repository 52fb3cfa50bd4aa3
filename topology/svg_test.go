package topology_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

// svgGroup is what an SVG export shows of one node or edge group.
type svgGroup struct {
	class, title string
	texts        []string
	paths        int
}

// parseSVG walks the SVG with encoding/xml (failing on anything not
// well-formed) and returns its node and edge groups and marker ids.
func parseSVG(t *testing.T, b []byte) (groups []svgGroup, markers []string) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	var cur *svgGroup
	var stack []string
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, b)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Space + " " + tok.Name.Local
			}
			stack = append(stack, tok.Name.Local)
			attr := map[string]string{}
			for _, a := range tok.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch tok.Name.Local {
			case "g":
				if c := attr["class"]; strings.HasPrefix(c, "node ") || strings.HasPrefix(c, "edge ") {
					groups = append(groups, svgGroup{class: c})
					cur = &groups[len(groups)-1]
				}
			case "path":
				if cur != nil {
					cur.paths++
				}
			case "marker":
				markers = append(markers, attr["id"])
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if tok.Name.Local == "g" {
				cur = nil
			}
		case xml.CharData:
			if cur == nil || len(stack) == 0 {
				continue
			}
			switch stack[len(stack)-1] {
			case "title":
				cur.title += string(tok)
			case "text":
				cur.texts = append(cur.texts, string(tok))
			}
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		t.Fatalf("root element %q, want svg in the SVG namespace", root)
	}
	return groups, markers
}

// Every node and edge of the sample (declared and observed) is drawn once:
// a group per node with its name, a group per edge with its path, arrowhead
// and label; synchronous edges red, the rest blue; undeclared edges marked.
func TestSVG_DrawsEveryNodeAndEdge(t *testing.T) {
	g := sample(t)
	observeSample(t, g)
	var b bytes.Buffer
	must(t, g.WriteSVG(&b))
	groups, markers := parseSVG(t, b.Bytes())
	sort.Strings(markers)
	if strings.Join(markers, ",") != "arrow-async,arrow-sync" {
		t.Errorf("markers %v", markers)
	}
	var nodes, edges []string
	for _, x := range groups {
		if strings.HasPrefix(x.class, "node ") {
			kind := strings.TrimPrefix(x.class, "node ")
			if len(x.texts) == 0 || x.title != kind+" "+x.texts[0] {
				t.Errorf("node group %q: title %q, texts %q", x.class, x.title, x.texts)
			}
			nodes = append(nodes, kind+" "+x.texts[0])
			continue
		}
		if x.paths != 1 || len(x.texts) != 1 {
			t.Errorf("edge %s: %d paths, texts %q; want one path and its label", x.title, x.paths, x.texts)
		}
		edges = append(edges, x.class+": "+x.title+" "+strings.Join(x.texts, ""))
	}
	var wantNodes, wantEdges []string
	for _, n := range g.Nodes() {
		wantNodes = append(wantNodes, string(n.Kind)+" "+n.ID)
	}
	for _, e := range g.Edges() {
		class := "edge " + string(e.Kind)
		if !e.Declared {
			class += " undeclared"
		}
		label := e.Protocol
		if len(e.Routes) > 0 {
			label += " " + strings.Join(e.Routes, " ")
		}
		if !e.Declared {
			label += " undeclared"
		}
		wantEdges = append(wantEdges, class+": "+e.From+" -> "+e.To+" ("+string(e.Kind)+") "+label)
	}
	if len(wantNodes) != 8 || len(wantEdges) != 9 {
		t.Fatalf("the sample changed: %d nodes, %d edges", len(wantNodes), len(wantEdges))
	}
	if strings.Join(nodes, "\n") != strings.Join(wantNodes, "\n") {
		t.Errorf("nodes:\n%s\nwant:\n%s", strings.Join(nodes, "\n"), strings.Join(wantNodes, "\n"))
	}
	if strings.Join(edges, "\n") != strings.Join(wantEdges, "\n") {
		t.Errorf("edges:\n%s\nwant:\n%s", strings.Join(edges, "\n"), strings.Join(wantEdges, "\n"))
	}
	svg := b.String()
	if n := strings.Count(svg, `stroke="#d62728" stroke-width="1.5" marker-end="url(#arrow-sync)"`) + strings.Count(svg, `stroke="#d62728" stroke-width="3" marker-end="url(#arrow-sync)"`); n != 6 {
		t.Errorf("%d red edge paths, want the sample's 6 synchronous edges", n)
	}
	if n := strings.Count(svg, `marker-end="url(#arrow-async)"`); n != 3 {
		t.Errorf("%d async arrowheads, want 3", n)
	}
}

// Names are text, never markup: angle brackets, quotes and ampersands in
// node names, routes and protocols come out escaped and read back as
// written; the output stays well-formed. A cycle and a self-call are drawn.
func TestSVG_EscapesHostileNames(t *testing.T) {
	g := topology.New()
	hostile := `<script>alert("x&y")</script>`
	quote := `it's "quoted" & <b>`
	for _, o := range []topology.Observation{
		{From: hostile, To: quote, Kind: system.Sync, Protocol: `h"t<t>p`, Route: `GET /a?b=1&c=<2>`},
		{From: quote, To: hostile, Kind: system.Sync, Protocol: "http"},
		{From: quote, To: quote, Kind: system.Sync, Protocol: "http"},
		{From: quote, To: "t&opic", Kind: system.Async, Protocol: "nats", Route: "publish"},
		{From: "bad\x01byte", To: "t&opic", Kind: system.Async, Protocol: "nats", Route: "publish"},
	} {
		must(t, g.Observe(o))
	}
	var b bytes.Buffer
	must(t, g.WriteSVG(&b))
	svg := b.String()
	if strings.Contains(svg, "<script") || strings.Contains(svg, "<b>") || strings.Contains(svg, "<2>") || strings.Contains(svg, "\x01") {
		t.Fatalf("unescaped markup in the SVG:\n%s", svg)
	}
	groups, _ := parseSVG(t, b.Bytes())
	var nodes, edges []string
	for _, x := range groups {
		if strings.HasPrefix(x.class, "node ") {
			nodes = append(nodes, x.texts[0])
		} else {
			edges = append(edges, x.title+" "+strings.Join(x.texts, ""))
		}
	}
	want := []string{hostile, "bad\uFFFDbyte", quote, "t&opic"}
	if strings.Join(nodes, "|") != strings.Join(want, "|") {
		t.Errorf("node names read back as %q, want %q", nodes, want)
	}
	wantEdges := []string{
		hostile + " -> " + quote + ` (sync) h"t<t>p GET /a?b=1&c=<2> undeclared`,
		"bad\uFFFDbyte -> t&opic (async) nats undeclared",
		quote + " -> " + hostile + " (sync) http undeclared",
		quote + " -> " + quote + " (sync) http undeclared",
		quote + " -> t&opic (async) nats undeclared",
	}
	if strings.Join(edges, "\n") != strings.Join(wantEdges, "\n") {
		t.Errorf("edges read back as:\n%s\nwant:\n%s", strings.Join(edges, "\n"), strings.Join(wantEdges, "\n"))
	}
}

// The same graph gives the same bytes, whatever order it was built in.
func TestSVG_Deterministic(t *testing.T) {
	obs := []topology.Observation{
		{From: "a", To: "b", Kind: system.Sync, Protocol: "http"},
		{From: "b", To: "c", Kind: system.Sync, Protocol: "http"},
		{From: "c", To: "a", Kind: system.Sync, Protocol: "http"},
		{From: "a", To: "c", Kind: system.Sync, Protocol: "grpc"},
		{From: "d", To: "b", Kind: system.Sync, Protocol: "http"},
	}
	var outs []string
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}} {
		g := topology.New()
		for _, i := range order {
			must(t, g.Observe(obs[i]))
		}
		var b bytes.Buffer
		must(t, g.WriteSVG(&b))
		parseSVG(t, b.Bytes())
		outs = append(outs, b.String())
	}
	if outs[0] != outs[1] || outs[0] != outs[2] {
		t.Fatalf("the SVG depends on insertion order:\n%s\n---\n%s", outs[0], outs[1])
	}
}

// The layout: a node's column is its longest path from a source (a cycle
// broken where the walk from the sources closes it), nodes sharing a column
// are stacked in id order, and an empty graph is still a well-formed image.
func TestSVG_LayersByLongestPath(t *testing.T) {
	g := topology.New()
	for _, o := range []topology.Observation{
		{From: "a", To: "c", Kind: system.Sync},
		{From: "a", To: "b", Kind: system.Sync},
		{From: "b", To: "d", Kind: system.Sync},
		{From: "c", To: "d", Kind: system.Sync},
		{From: "a", To: "d", Kind: system.Sync}, // skips a column: d stays at depth 2
		{From: "d", To: "a", Kind: system.Sync}, // closes a cycle: drawn, not followed
	} {
		must(t, g.Observe(o))
	}
	var b bytes.Buffer
	must(t, g.WriteSVG(&b))
	parseSVG(t, b.Bytes())
	pos := map[string][2]int{}
	dec := xml.NewDecoder(&b)
	title := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch tok := tok.(type) {
		case xml.CharData:
			if s := string(tok); strings.HasPrefix(s, "service ") {
				title = strings.TrimPrefix(s, "service ")
			}
		case xml.StartElement:
			if tok.Name.Local != "rect" || title == "" {
				continue
			}
			var x, y int
			for _, a := range tok.Attr {
				switch a.Name.Local {
				case "x":
					x = atoi(t, a.Value)
				case "y":
					y = atoi(t, a.Value)
				}
			}
			pos[title] = [2]int{x, y}
			title = ""
		}
	}
	a, bb, c, d := pos["a"], pos["b"], pos["c"], pos["d"]
	if len(pos) != 4 || !(a[0] < bb[0] && bb[0] == c[0] && c[0] < d[0]) {
		t.Fatalf("columns: %v; want a, then b and c, then d", pos)
	}
	if !(bb[1] < c[1] && a[1] == bb[1] && d[1] == a[1]) {
		t.Fatalf("rows: %v; want b above c, a and d on the first row", pos)
	}

	b.Reset()
	must(t, topology.New().WriteSVG(&b))
	if groups, _ := parseSVG(t, b.Bytes()); len(groups) != 0 {
		t.Fatalf("an empty graph drew %d groups", len(groups))
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("coordinate %q: %v", s, err)
	}
	return n
}

// Whatever the names, routes and protocols, the SVG is well-formed XML and
// draws every node and edge.
func FuzzSVG_WellFormed(f *testing.F) {
	f.Add("gateway", "order", "http", "POST /orders", true)
	f.Add(`<script>`, `"&'`, "]]>", "<!-- -->", false)
	f.Add("a\x00b", "\xff", "\t\r\n", "é", true)
	f.Fuzz(func(t *testing.T, from, to, protocol, route string, sync bool) {
		if from == "" || to == "" {
			return
		}
		g := topology.New()
		kind := system.Async
		if sync {
			kind = system.Sync
		}
		must(t, g.Observe(topology.Observation{From: from, To: to, Kind: kind, Protocol: protocol, Route: route}))
		must(t, g.Observe(topology.Observation{From: to, To: "x", Kind: system.Sync, Protocol: protocol}))
		var b bytes.Buffer
		must(t, g.WriteSVG(&b))
		groups, _ := parseSVG(t, b.Bytes())
		if want := len(g.Nodes()) + len(g.Edges()); len(groups) != want {
			t.Fatalf("%d groups for %d nodes and edges:\n%s", len(groups), want, b.Bytes())
		}
	})
}
