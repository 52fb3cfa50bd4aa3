package topology

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/handoffhq/handoff/system"
)

// SVG colours: synchronous edges red, asynchronous blue.
const (
	svgSync  = "#d62728"
	svgAsync = "#1f77b4"
)

// SVG geometry, in user units. Text widths are estimated from rune counts
// (the writer has no font metrics), generously enough for Helvetica.
const (
	svgCharW     = 7  // node text at 12px
	svgLabelW    = 6  // edge labels at 11px
	svgBoxH      = 44 // every node box
	svgRowGap    = 36 // between boxes in a column
	svgMinBoxW   = 100
	svgMargin    = 24
	svgMinColGap = 120
	svgMaxColGap = 260
)

type svgBox struct {
	n          Node
	col, row   int
	x, y, w, h int
}

func (b *svgBox) cx() int     { return b.x + b.w/2 }
func (b *svgBox) cy() int     { return b.y + b.h/2 }
func (b *svgBox) right() int  { return b.x + b.w }
func (b *svgBox) bottom() int { return b.y + b.h }

// svgBounds grows to hold everything drawn, for the viewBox.
type svgBounds struct{ minX, minY, maxX, maxY int }

func (b *svgBounds) add(x, y int) {
	b.minX, b.maxX = min(b.minX, x), max(b.maxX, x)
	b.minY, b.maxY = min(b.minY, y), max(b.maxY, y)
}

// addText holds a centred text of n runes at (x, y), y its baseline.
func (b *svgBounds) addText(x, y, runes, charW int) {
	b.add(x-runes*charW/2, y-14)
	b.add(x+runes*charW/2, y+4)
}

// svgLayers places each node in a column by its depth: the longest path to
// it from the sources along the edges. Cycles are broken deterministically:
// a depth-first walk from the sources (then any node left), both in id
// order and following edges in their sorted order, drops the edges that
// lead back into the walk's current path. The dropped edges are reported.
func svgLayers(nodes []Node, edges []Edge) (map[string]int, map[int]bool) {
	out := map[string][]int{}
	indeg := map[string]int{}
	for i, e := range edges {
		if e.From == e.To {
			continue
		}
		out[e.From] = append(out[e.From], i)
		indeg[e.To]++
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	back := map[int]bool{}
	var post []string
	var visit func(id string)
	visit = func(id string) {
		state[id] = onPath
		for _, i := range out[id] {
			switch to := edges[i].To; state[to] {
			case onPath:
				back[i] = true
			case unseen:
				visit(to)
			}
		}
		state[id] = done
		post = append(post, id)
	}
	for _, n := range nodes {
		if indeg[n.ID] == 0 && state[n.ID] == unseen {
			visit(n.ID)
		}
	}
	for _, n := range nodes {
		if state[n.ID] == unseen {
			visit(n.ID)
		}
	}
	depth := map[string]int{}
	for i := len(post) - 1; i >= 0; i-- { // reverse post-order: a topological order without the back edges
		id := post[i]
		for _, ei := range out[id] {
			if !back[ei] {
				depth[edges[ei].To] = max(depth[edges[ei].To], depth[id]+1)
			}
		}
	}
	return depth, back
}

// WriteSVG writes the graph as a standalone SVG image with a layered
// layout: nodes in columns by their depth along the edges (the longest path
// from a source, cycles broken deterministically), sorted by id within a
// column; services as rounded boxes with their declared availability,
// topics as stadiums. Synchronous edges are red and solid, asynchronous
// blue and dashed, undeclared edges thick; each edge is labelled with its
// protocol and routes. Edges that skip columns or point backwards arc
// around the boxes. The output depends only on the graph.
func (g *Graph) WriteSVG(w io.Writer) error {
	nodes, edges := g.Nodes(), g.Edges()
	depth, back := svgLayers(nodes, edges)

	// Columns and boxes.
	ncol := 0
	for _, n := range nodes {
		ncol = max(ncol, depth[n.ID]+1)
	}
	colW := make([]int, ncol)
	colRows := make([]int, ncol)
	boxes := map[string]*svgBox{}
	ordered := make([]*svgBox, 0, len(nodes))
	for _, n := range nodes { // id order, so rows are sorted by id
		c := depth[n.ID]
		runes := max(utf8.RuneCountInString(n.ID), utf8.RuneCountInString(n.Availability))
		b := &svgBox{n: n, col: c, row: colRows[c], w: max(svgMinBoxW, runes*svgCharW+24), h: svgBoxH}
		colRows[c]++
		colW[c] = max(colW[c], b.w)
		boxes[n.ID] = b
		ordered = append(ordered, b)
	}
	gap := svgMinColGap
	for _, e := range edges {
		gap = max(gap, utf8.RuneCountInString(edgeLabel(e))*svgLabelW+40)
	}
	gap = min(gap, svgMaxColGap)
	colX := make([]int, ncol)
	for c := 1; c < ncol; c++ {
		colX[c] = colX[c-1] + colW[c-1] + gap
	}
	var bounds svgBounds
	colTop, colBottom := make([]int, ncol), make([]int, ncol)
	for _, b := range ordered {
		b.x = colX[b.col] + (colW[b.col]-b.w)/2
		b.y = b.row * (svgBoxH + svgRowGap)
		colBottom[b.col] = max(colBottom[b.col], b.bottom())
		bounds.add(b.x, b.y)
		bounds.add(b.right(), b.bottom())
	}

	// Edges: their paths and label positions.
	type drawn struct {
		e      Edge
		path   string
		lx, ly int
	}
	var draws []drawn
	arcsAbove, arcsBelow := 0, 0
	for i, e := range edges {
		from, to := boxes[e.From], boxes[e.To]
		label := utf8.RuneCountInString(edgeLabel(e))
		var d drawn
		d.e = e
		switch {
		case from == to: // a node calling itself: a loop over its top-right corner
			x1, y1 := from.right()-16, from.y
			x2, y2 := from.right(), from.y+12
			d.path = fmt.Sprintf("M %d %d C %d %d %d %d %d %d", x1, y1, x1, y1-36, x2+36, y2, x2, y2)
			d.lx, d.ly = from.right()+8, from.y-16
			bounds.add(x2+36, y1-36)
		case !back[i] && !svgBlocked(from, to, colX, colW, ordered):
			x1, y1, x2, y2 := from.right(), from.cy(), to.x, to.cy()
			d.path = fmt.Sprintf("M %d %d L %d %d", x1, y1, x2, y2)
			d.lx, d.ly = (x1+x2)/2, (y1+y2)/2-5
		default:
			// Forward edges that would cross a box arc above the columns
			// they span; backward edges arc below.
			lo, hi := min(from.col, to.col), max(from.col, to.col)
			x1, x2 := from.cx(), to.cx()
			var y1, y2, apex int
			if back[i] {
				y1, y2 = from.bottom(), to.bottom()
				apex = 0
				for c := lo; c <= hi; c++ {
					apex = max(apex, colBottom[c])
				}
				arcsBelow++
				apex += 24 * arcsBelow
			} else {
				y1, y2 = from.y, to.y
				apex = colTop[lo]
				arcsAbove++
				apex -= 24 * arcsAbove
			}
			cy := (4*apex - y1 - y2) / 2 // the quadratic's midpoint lies on the apex
			d.path = fmt.Sprintf("M %d %d Q %d %d %d %d", x1, y1, (x1+x2)/2, cy, x2, y2)
			d.lx, d.ly = (x1+x2)/2, apex-4
			if back[i] {
				d.ly = apex + 14
			}
			bounds.add(x1, apex)
		}
		bounds.addText(d.lx, d.ly, label, svgLabelW)
		draws = append(draws, d)
	}

	lx, ly := bounds.minX, bounds.maxY+svgMargin // the legend, under everything
	bounds.add(lx+460, ly+8)
	vx, vy := bounds.minX-svgMargin, bounds.minY-svgMargin
	vw, vh := bounds.maxX-bounds.minX+2*svgMargin, bounds.maxY-bounds.minY+2*svgMargin
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="%d %d %d %d" width="%d" height="%d" font-family="Helvetica, Arial, sans-serif">`+"\n", vx, vy, vw, vh, vw, vh)
	b.WriteString("  <defs>\n")
	for _, m := range []struct{ id, color string }{{"arrow-sync", svgSync}, {"arrow-async", svgAsync}} {
		fmt.Fprintf(&b, `    <marker id="%s" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="%s"/></marker>`+"\n", m.id, m.color)
	}
	b.WriteString("  </defs>\n")
	fmt.Fprintf(&b, `  <rect x="%d" y="%d" width="%d" height="%d" fill="#ffffff"/>`+"\n", vx, vy, vw, vh)
	for _, d := range draws {
		color, marker, dash, kind := svgAsync, "arrow-async", ` stroke-dasharray="6 4"`, "async"
		if d.e.Kind == system.Sync {
			color, marker, dash, kind = svgSync, "arrow-sync", "", "sync"
		}
		width, class := 1.5, "edge "+kind
		if !d.e.Declared {
			width, class = 3, class+" undeclared"
		}
		fmt.Fprintf(&b, `  <g class="%s">`+"\n", class)
		fmt.Fprintf(&b, "    <title>%s -&gt; %s (%s)</title>\n", svgEscape(d.e.From), svgEscape(d.e.To), kind)
		fmt.Fprintf(&b, `    <path d="%s" fill="none" stroke="%s" stroke-width="%g"%s marker-end="url(#%s)"/>`+"\n", d.path, color, width, dash, marker)
		if l := edgeLabel(d.e); l != "" {
			fmt.Fprintf(&b, `    <text x="%d" y="%d" font-size="11" text-anchor="middle" fill="%s" stroke="#ffffff" stroke-width="3" paint-order="stroke">%s</text>`+"\n", d.lx, d.ly, color, svgEscape(l))
		}
		b.WriteString("  </g>\n")
	}
	for _, x := range ordered {
		kind, rx, fill := "service", 8, "#f2f2f2"
		if x.n.Kind == Topic {
			kind, rx, fill = "topic", x.h/2, "#fff5d6"
		}
		fmt.Fprintf(&b, `  <g class="node %s">`+"\n", kind)
		fmt.Fprintf(&b, "    <title>%s %s</title>\n", kind, svgEscape(x.n.ID))
		fmt.Fprintf(&b, `    <rect x="%d" y="%d" width="%d" height="%d" rx="%d" ry="%d" fill="%s" stroke="#333333" stroke-width="1.5"/>`+"\n", x.x, x.y, x.w, x.h, rx, rx, fill)
		if x.n.Availability != "" {
			fmt.Fprintf(&b, `    <text x="%d" y="%d" font-size="12" text-anchor="middle">%s</text>`+"\n", x.cx(), x.y+19, svgEscape(x.n.ID))
			fmt.Fprintf(&b, `    <text x="%d" y="%d" font-size="10" text-anchor="middle" fill="#555555">%s</text>`+"\n", x.cx(), x.y+34, svgEscape(x.n.Availability))
		} else {
			fmt.Fprintf(&b, `    <text x="%d" y="%d" font-size="12" text-anchor="middle">%s</text>`+"\n", x.cx(), x.cy()+4, svgEscape(x.n.ID))
		}
		b.WriteString("  </g>\n")
	}
	fmt.Fprintf(&b, `  <g class="legend" font-size="11">`+"\n")
	fmt.Fprintf(&b, `    <line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5"/><text x="%d" y="%d">synchronous</text>`+"\n", lx, ly, lx+30, ly, svgSync, lx+36, ly+4)
	fmt.Fprintf(&b, `    <line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/><text x="%d" y="%d">asynchronous</text>`+"\n", lx+130, ly, lx+160, ly, svgAsync, lx+166, ly+4)
	fmt.Fprintf(&b, `    <line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333333" stroke-width="3"/><text x="%d" y="%d">undeclared (observed only)</text>`+"\n", lx+270, ly, lx+300, ly, lx+306, ly+4)
	b.WriteString("  </g>\n</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// svgBlocked reports whether the straight line between two boxes in
// columns apart would cross a box of a column between them.
func svgBlocked(from, to *svgBox, colX, colW []int, boxes []*svgBox) bool {
	if to.col-from.col <= 1 {
		return false
	}
	x1, y1, x2, y2 := from.right(), from.cy(), to.x, to.cy()
	for _, b := range boxes {
		if b.col <= from.col || b.col >= to.col {
			continue
		}
		// The line's heights across the column's span.
		ya := y1 + (y2-y1)*(colX[b.col]-x1)/(x2-x1)
		yb := y1 + (y2-y1)*(colX[b.col]+colW[b.col]-x1)/(x2-x1)
		if max(ya, yb) >= b.y-6 && min(ya, yb) <= b.bottom()+6 {
			return true
		}
	}
	return false
}

// svgEscape escapes text for XML character data and attribute values
// (quotes, ampersands, angle brackets; characters XML cannot hold become
// U+FFFD).
func svgEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder does not fail
	return b.String()
}
