package impact

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/handoffhq/handoff/schema"
)

// maxDepth bounds the walk of a schema; deeper fields are not compared.
const maxDepth = 32

// diffFields compares the fields of two schemas: removed paths and paths
// whose type changed. Protobuf schemas give no fields (the compatibility
// findings stand in).
func diffFields(old, new *schema.Parsed) ([]FieldChange, map[string]string, error) {
	if old.Type() != new.Type() {
		return []FieldChange{{Path: "/", Kind: Altered, Old: string(old.Type()), New: string(new.Type())}}, nil, nil
	}
	a, err := fields(old)
	if err != nil {
		return nil, nil, fmt.Errorf("the registered version: %w", err)
	}
	b, err := fields(new)
	if err != nil {
		return nil, nil, fmt.Errorf("the new version: %w", err)
	}
	var out []FieldChange
	for p, t := range a {
		nt, ok := b[p]
		switch {
		case !ok:
			// Report the outermost removed path only.
			if parent := parentOf(p); parent != "" {
				if _, ok := b[parent]; !ok {
					if _, had := a[parent]; had {
						continue
					}
				}
			}
			out = append(out, FieldChange{Path: p, Kind: Removed, Old: t})
		case nt != t:
			out = append(out, FieldChange{Path: p, Kind: Altered, Old: t, New: nt})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, a, nil
}

func parentOf(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

// fields maps each data path of a schema to a description of its type.
func fields(p *schema.Parsed) (map[string]string, error) {
	s := p.Schema()
	out := map[string]string{}
	switch p.Type() {
	case schema.JSON:
		var doc any
		if err := json.Unmarshal([]byte(s.Text), &doc); err != nil {
			return nil, err
		}
		w := jsonWalker{root: doc, out: out}
		w.walk(doc, "", 0)
	case schema.Avro:
		var doc any
		if err := json.Unmarshal([]byte(s.Text), &doc); err != nil {
			// An Avro schema may be a bare primitive name such as "string"
			// without quotes in some tools; the parser accepted it, so it
			// has no fields.
			return out, nil
		}
		w := avroWalker{named: map[string]any{}, out: out}
		for _, ref := range s.References {
			var r any
			if json.Unmarshal([]byte(ref), &r) == nil {
				w.collect(r, "")
			}
		}
		w.collect(doc, "")
		w.walk(doc, "", "", 0)
	}
	return out, nil
}

type jsonWalker struct {
	root any
	out  map[string]string
}

func (w *jsonWalker) resolve(n map[string]any) map[string]any {
	for range maxDepth {
		ref, ok := n["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#") {
			return n
		}
		var cur any = w.root
		for _, seg := range strings.Split(strings.TrimPrefix(ref, "#"), "/") {
			if seg == "" {
				continue
			}
			seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
			m, ok := cur.(map[string]any)
			if !ok {
				return n
			}
			cur = m[seg]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			return n
		}
		n = next
	}
	return n
}

func (w *jsonWalker) walk(v any, path string, depth int) {
	n, ok := v.(map[string]any)
	if !ok || depth > maxDepth {
		return
	}
	n = w.resolve(n)
	if path != "" {
		if t := jsonType(n); t != "" || w.out[path] == "" {
			w.out[path] = t
		}
	}
	if props, ok := n["properties"].(map[string]any); ok {
		for k, sub := range props {
			w.walk(sub, path+"/"+escape(k), depth+1)
		}
	}
	if items, ok := n["items"].(map[string]any); ok {
		w.walk(items, path, depth+1)
	}
	for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
		if subs, ok := n[kw].([]any); ok {
			for _, sub := range subs {
				if m, ok := sub.(map[string]any); ok {
					w.walkProps(m, path, depth+1)
				}
			}
		}
	}
}

// walkProps walks the properties of a subschema of allOf/anyOf/oneOf
// without recording the subschema itself as the field.
func (w *jsonWalker) walkProps(n map[string]any, path string, depth int) {
	n = w.resolve(n)
	if props, ok := n["properties"].(map[string]any); ok {
		for k, sub := range props {
			w.walk(sub, path+"/"+escape(k), depth+1)
		}
	}
}

func jsonType(n map[string]any) string {
	switch t := n["type"].(type) {
	case string:
		if f, ok := n["format"].(string); ok {
			return t + " (" + f + ")"
		}
		return t
	case []any:
		var s []string
		for _, x := range t {
			if str, ok := x.(string); ok {
				s = append(s, str)
			}
		}
		sort.Strings(s)
		return strings.Join(s, "|")
	}
	if _, ok := n["properties"]; ok {
		return "object"
	}
	return ""
}

type avroWalker struct {
	named map[string]any
	out   map[string]string
}

// collect records the named types a document defines, by full name and by
// short name.
func (w *avroWalker) collect(v any, ns string) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			w.collect(e, ns)
		}
	case map[string]any:
		if n, ok := x["namespace"].(string); ok {
			ns = n
		}
		if name, ok := x["name"].(string); ok {
			if t, _ := x["type"].(string); t == "record" || t == "enum" || t == "fixed" || t == "error" {
				full := name
				if !strings.Contains(name, ".") && ns != "" {
					full = ns + "." + name
				}
				w.named[full] = x
				w.named[name] = x
			}
		}
		if fs, ok := x["fields"].([]any); ok {
			for _, f := range fs {
				if fm, ok := f.(map[string]any); ok {
					w.collect(fm["type"], ns)
				}
			}
		}
		w.collect(x["items"], ns)
		w.collect(x["values"], ns)
	}
}

func (w *avroWalker) walk(v any, path, ns string, depth int) string {
	if depth > maxDepth {
		return "?"
	}
	switch x := v.(type) {
	case string:
		if def, ok := w.named[x]; ok && !avroPrimitive(x) {
			if depth > 0 && path != "" {
				// Walk a named type's fields once per path.
				return w.walk(def, path, ns, depth+1)
			}
		}
		return x
	case []any:
		var names []string
		for _, b := range x {
			names = append(names, w.walk(b, path, ns, depth+1))
		}
		return "union[" + strings.Join(names, ",") + "]"
	case map[string]any:
		if n, ok := x["namespace"].(string); ok {
			ns = n
		}
		t, _ := x["type"].(string)
		switch t {
		case "record", "error":
			if fs, ok := x["fields"].([]any); ok {
				for _, f := range fs {
					fm, ok := f.(map[string]any)
					if !ok {
						continue
					}
					name, _ := fm["name"].(string)
					p := path + "/" + escape(name)
					w.out[p] = w.walk(fm["type"], p, ns, depth+1)
				}
			}
			name, _ := x["name"].(string)
			return "record " + name
		case "array":
			return "array<" + w.walk(x["items"], path, ns, depth+1) + ">"
		case "map":
			return "map<" + w.walk(x["values"], path, ns, depth+1) + ">"
		case "enum", "fixed":
			name, _ := x["name"].(string)
			return t + " " + name
		default:
			if lt, ok := x["logicalType"].(string); ok {
				return t + " (" + lt + ")"
			}
			return t
		}
	}
	return "?"
}

func avroPrimitive(s string) bool {
	switch s {
	case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
		return true
	}
	return false
}

// dataPath turns a compatibility finding's path into a data path: JSON
// Schema's pointer into the schema document (/properties/a/properties/b)
// becomes /a/b; Avro's is one already; Protobuf's loses its message name.
func dataPath(t schema.Type, p string) string {
	switch t {
	case schema.JSON:
		if i := strings.Index(p, "#"); i >= 0 {
			p = p[i+1:]
		}
		segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		var out []string
		for i := 0; i < len(segs); i++ {
			if segs[i] == "properties" && i+1 < len(segs) {
				out = append(out, segs[i+1])
				i++
			}
		}
		if len(out) == 0 {
			return ""
		}
		return "/" + strings.Join(out, "/")
	case schema.Protobuf:
		segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		if len(segs) < 2 {
			return ""
		}
		return "/" + strings.Join(segs[1:], "/")
	default:
		return p
	}
}

// TopLevelFields returns the names of a schema's top-level fields (JSON
// Schema properties, Avro record fields), sorted; ok is false for a schema
// whose fields are not compared (Protobuf).
func TopLevelFields(p *schema.Parsed) (names []string, ok bool) {
	if p.Type() == schema.Protobuf {
		return nil, false
	}
	fs, err := fields(p)
	if err != nil {
		return nil, false
	}
	for path := range fs {
		if strings.Count(path, "/") == 1 {
			names = append(names, strings.TrimPrefix(path, "/"))
		}
	}
	sort.Strings(names)
	return names, true
}
