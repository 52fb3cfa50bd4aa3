package topology

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/handoffhq/handoff/system"
)

// Document is the JSON export: the graph and its analysis.
type Document struct {
	Nodes  []Node  `json:"nodes"`
	Edges  []Edge  `json:"edges"`
	Chains []Chain `json:"chains"`
	Fans   []Fan   `json:"fans"`
	Drift  []Drift `json:"drift"`
}

// Document returns the graph and its analysis, ready for JSON.
func (g *Graph) Document() Document {
	d := Document{Nodes: g.Nodes(), Edges: g.Edges(), Chains: g.Chains(), Fans: g.Fans(), Drift: g.Drift()}
	if d.Chains == nil {
		d.Chains = []Chain{}
	}
	if d.Drift == nil {
		d.Drift = []Drift{}
	}
	return d
}

// WriteJSON writes the Document, indented.
func (g *Graph) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(g.Document())
}

func edgeLabel(e Edge) string {
	parts := []string{}
	if e.Protocol != "" {
		parts = append(parts, e.Protocol)
	}
	parts = append(parts, e.Routes...)
	if !e.Declared {
		parts = append(parts, "undeclared")
	}
	return strings.Join(parts, " ")
}

// WriteDOT writes the graph in Graphviz DOT: services as boxes, topics as
// cylinders-like cds shapes, synchronous edges red, asynchronous dashed,
// undeclared edges bold.
func (g *Graph) WriteDOT(w io.Writer) error {
	var b strings.Builder
	b.WriteString("digraph topology {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n")
	for _, n := range g.Nodes() {
		shape := "box"
		if n.Kind == Topic {
			shape = "cds"
		}
		label := dotEscape(n.ID)
		if n.Availability != "" {
			label += `\n` + dotEscape(n.Availability)
		}
		fmt.Fprintf(&b, "  %q [shape=%s, label=\"%s\"];\n", n.ID, shape, label)
	}
	for _, e := range g.Edges() {
		attrs := []string{fmt.Sprintf("label=%q", edgeLabel(e))}
		if e.Kind == system.Sync {
			attrs = append(attrs, "color=red", "fontcolor=red")
		} else {
			attrs = append(attrs, "style=dashed")
		}
		if !e.Declared {
			attrs = append(attrs, "penwidth=2")
		}
		fmt.Fprintf(&b, "  %q -> %q [%s];\n", e.From, e.To, strings.Join(attrs, ", "))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func dotEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// mermaidID turns a node id into an identifier Mermaid accepts.
func mermaidID(id string) string {
	var b strings.Builder
	for _, r := range id {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return "n_" + b.String()
}

func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "|", "#124;").Replace(s)
}

// WriteMermaid writes the graph as a Mermaid flowchart: synchronous edges
// solid and red, asynchronous dotted, topics as stadiums.
func (g *Graph) WriteMermaid(w io.Writer) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, n := range g.Nodes() {
		if n.Kind == Topic {
			fmt.Fprintf(&b, "  %s([\"%s\"])\n", mermaidID(n.ID), mermaidText(n.ID))
		} else {
			fmt.Fprintf(&b, "  %s[\"%s\"]\n", mermaidID(n.ID), mermaidText(n.ID))
		}
	}
	var red []string
	for i, e := range g.Edges() {
		arrow := "-.->"
		if e.Kind == system.Sync {
			arrow = "-->"
			red = append(red, fmt.Sprint(i))
		}
		if l := edgeLabel(e); l != "" {
			fmt.Fprintf(&b, "  %s %s|\"%s\"| %s\n", mermaidID(e.From), arrow, mermaidText(l), mermaidID(e.To))
		} else {
			fmt.Fprintf(&b, "  %s %s %s\n", mermaidID(e.From), arrow, mermaidID(e.To))
		}
	}
	if len(red) > 0 {
		fmt.Fprintf(&b, "  linkStyle %s stroke:red,color:red\n", strings.Join(red, ","))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
