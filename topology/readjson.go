package topology

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/handoffhq/handoff/system"
)

// maxJSONGraph bounds what ReadJSON reads.
const maxJSONGraph = 64 << 20

// ReadJSON reads a graph written by WriteJSON (the JSON export, and what
// handoff serve answers on GET /topology): its nodes and edges. The
// analysis in the document (chains, fans, drift) is not read: the graph
// derives it again. Each node needs an id and a kind, each edge both ends,
// nodes of the document, and a kind, sync or async.
func ReadJSON(r io.Reader) (*Graph, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJSONGraph+1))
	if err != nil {
		return nil, fmt.Errorf("topology: read JSON: %w", err)
	}
	if len(b) > maxJSONGraph {
		return nil, fmt.Errorf("topology: read JSON: larger than %d bytes", maxJSONGraph)
	}
	var d struct {
		Nodes []Node `json:"nodes"`
		Edges []Edge `json:"edges"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("topology: read JSON: %w", err)
	}
	g := New()
	for i, n := range d.Nodes {
		switch {
		case n.ID == "":
			return nil, fmt.Errorf("topology: read JSON: nodes[%d].id: must not be empty", i)
		case n.Kind != Service && n.Kind != Topic:
			return nil, fmt.Errorf("topology: read JSON: nodes[%d].kind: %q must be service or topic", i, n.Kind)
		case g.nodes[n.ID] != nil:
			return nil, fmt.Errorf("topology: read JSON: nodes[%d].id: %q appears twice", i, n.ID)
		}
		g.nodes[n.ID] = &n
	}
	for i, e := range d.Edges {
		switch {
		case g.nodes[e.From] == nil:
			return nil, fmt.Errorf("topology: read JSON: edges[%d].from: %q is not a node", i, e.From)
		case g.nodes[e.To] == nil:
			return nil, fmt.Errorf("topology: read JSON: edges[%d].to: %q is not a node", i, e.To)
		case e.Kind != system.Sync && e.Kind != system.Async:
			return nil, fmt.Errorf("topology: read JSON: edges[%d].kind: %q must be sync or async", i, e.Kind)
		}
		k := EdgeKey{e.From, e.To, e.Kind}
		if g.edges[k] != nil {
			return nil, fmt.Errorf("topology: read JSON: edges[%d]: %s -> %s (%s) appears twice", i, e.From, e.To, e.Kind)
		}
		g.edges[k] = &e
	}
	return g, nil
}
