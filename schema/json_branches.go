package schema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// ---- anyOf/oneOf branch matching (fast paths and a cap on the work)

// jsonMaxPairs bounds the branch comparisons of one combinator: more than
// jsonMaxPairs² plausible (writer branch, reader branch) pairs that are not
// identical is reported as SUBSCHEMA_UNVERIFIABLE.
const jsonMaxPairs = 64

type sliceKey struct {
	first **jsch
	n     int
}

func keyOf(rs []*jsch) sliceKey {
	if len(rs) == 0 {
		return sliceKey{}
	}
	return sliceKey{&rs[0], len(rs)}
}

type coverKey struct {
	b  *jsch
	rs sliceKey
}

type coverResult struct {
	i    int
	same bool
}

// byFingerprint indexes branches by fingerprint.
func (c *jsonCompat) byFingerprint(rs []*jsch) map[string][]int {
	k := keyOf(rs)
	if m, ok := c.fpIndex[k]; ok {
		return m
	}
	m := map[string][]int{}
	for i, r := range rs {
		f := c.fingerprint(r)
		m[f] = append(m[f], i)
	}
	c.fpIndex[k] = m
	return m
}

// sameBranch returns the index of a branch of rs structurally identical to
// b, or -1.
func (c *jsonCompat) sameBranch(b *jsch, rs []*jsch) int {
	for _, i := range c.byFingerprint(rs)[c.fingerprint(b)] {
		if c.same(b, rs[i]) {
			return i
		}
	}
	return -1
}

// plausible reports whether b may be a subset of r: false when their
// types or their discriminators (required properties with const/enum
// values) are disjoint.
func (c *jsonCompat) plausible(b, r *jsch) bool {
	bt := c.types(b)
	if bt == 0 {
		return true
	}
	if bt&c.types(r) == 0 {
		return false
	}
	return !c.tagsDisjoint(b, r)
}

// coverIndex returns the index of a reader branch that accepts everything b
// accepts, or -1; same tells whether it is structurally identical to b.
// Identical branches match first, then only plausible pairs are checked.
func (c *jsonCompat) coverIndex(b *jsch, rs []*jsch) (int, bool) {
	key := coverKey{b, keyOf(rs)}
	if res, ok := c.covers[key]; ok {
		return res.i, res.same
	}
	res := coverResult{i: -1}
	if i := c.sameBranch(b, rs); i >= 0 {
		res = coverResult{i, true}
	} else {
		for i, r := range rs {
			if c.plausible(b, r) && len(c.subset(b, r, loc(r))) == 0 {
				res.i = i
				break
			}
		}
	}
	c.covers[key] = res
	return res.i, res.same
}

// tooManyBranches reports whether matching the writer branches wb to the
// reader branches rs would take more than jsonMaxPairs² subset checks.
func (c *jsonCompat) tooManyBranches(wb, rs []*jsch) bool {
	if len(wb)*len(rs) <= jsonMaxPairs*jsonMaxPairs {
		return false
	}
	n := 0
	for _, b := range wb {
		if c.sameBranch(b, rs) >= 0 {
			continue
		}
		for _, r := range rs {
			if c.plausible(b, r) {
				n++
			}
		}
		if n > jsonMaxPairs*jsonMaxPairs {
			return true
		}
	}
	return false
}

// disjoint reports whether no instance can be valid under both a and b (a
// false answer means they may overlap): disjoint types, a finite schema
// none of whose values the other accepts, or objects with a property both
// require whose const/enum values do not intersect.
func (c *jsonCompat) disjoint(a, b *jsch) bool {
	ta, tb := c.types(a), c.types(b)
	if ta&tb == 0 {
		return true
	}
	for _, p := range [][2]*jsch{{a, b}, {b, a}} {
		if vals, ok := c.finiteValues(p[0]); ok {
			return !slices.ContainsFunc(vals, func(v any) bool { return p[1].Validate(v) == nil })
		}
	}
	return ta&tb&^tObj == 0 && c.tagsDisjoint(a, b)
}

// tagsDisjoint reports whether a and b both require a property whose
// const/enum value sets do not intersect.
func (c *jsonCompat) tagsDisjoint(a, b *jsch) bool {
	ta, tb := c.tags(a), c.tags(b)
	if len(ta) == 0 || len(tb) == 0 {
		return false
	}
	for n, va := range ta {
		vb, ok := tb[n]
		if !ok {
			continue
		}
		common := false
		for v := range va {
			if vb[v] {
				common = true
				break
			}
		}
		if !common {
			return true
		}
	}
	return false
}

// tags maps each property s requires (in s or its conjuncts) whose schema
// (after $ref and allOf) has a const or enum to the canonical keys of those
// values: an object valid under s carries one of them under that name.
func (c *jsonCompat) tags(s *jsch) map[string]map[string]bool {
	if s == nil {
		return nil
	}
	if t, ok := c.tags_[s]; ok {
		return t
	}
	c.tags_[s] = nil
	conj := c.closure(s)
	var out map[string]map[string]bool
	for _, x := range conj {
		for _, n := range x.Required {
			if out[n] != nil {
				continue
			}
			for _, y := range conj {
				p, ok := y.Properties[n]
				if !ok {
					continue
				}
				if keys := c.valueKeys(p); keys != nil {
					if out == nil {
						out = map[string]map[string]bool{}
					}
					out[n] = keys
					break
				}
			}
		}
	}
	c.tags_[s] = out
	return out
}

// valueKeys returns the canonical keys of the const/enum values that bound
// s, or nil when there are none (or one is an object or array).
func (c *jsonCompat) valueKeys(s *jsch) map[string]bool {
	for _, x := range c.closure(s) {
		var vals []any
		switch {
		case x.Const != nil:
			vals = []any{*x.Const}
		case x.Enum != nil:
			vals = x.Enum.Values
		default:
			continue
		}
		keys := map[string]bool{}
		for _, v := range vals {
			k, ok := scalarKey(v)
			if !ok {
				return nil
			}
			keys[k] = true
		}
		return keys
	}
	return nil
}

// scalarKey is a canonical text for a scalar JSON value (1 and 1.0 alike).
func scalarKey(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "null", true
	case bool:
		return fmt.Sprint(v), true
	case string:
		return strconvQuote(v), true
	case json.Number:
		r, ok := new(big.Rat).SetString(string(v))
		if !ok {
			return "", false
		}
		return "#" + r.RatString(), true
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(v) == nil {
			return "", false
		}
		return "#" + r.RatString(), true
	}
	return "", false
}

// fingerprint is a canonical text of the schema's main keywords, followed
// a few levels deep: structurally identical schemas have equal
// fingerprints (then confirmed with same), so identical branches pair up
// by a map lookup.
func (c *jsonCompat) fingerprint(s *jsch) string {
	if f, ok := c.fps[s]; ok {
		return f
	}
	var b strings.Builder
	fingerprintTo(&b, s, 3)
	f := b.String()
	c.fps[s] = f
	return f
}

func fingerprintTo(b *strings.Builder, s *jsch, depth int) {
	if s == nil || isTrue(s) {
		b.WriteString("T")
		return
	}
	if s.Bool != nil {
		b.WriteString("F")
		return
	}
	if depth == 0 {
		b.WriteString("…")
		return
	}
	fmt.Fprintf(b, "{t%d", declaredTypes(s))
	if s.Const != nil {
		j, _ := json.Marshal(*s.Const)
		fmt.Fprintf(b, "c%s", j)
	}
	if s.Enum != nil {
		j, _ := json.Marshal(s.Enum.Values)
		fmt.Fprintf(b, "e%s", j)
	}
	if s.Format != nil {
		fmt.Fprintf(b, "f%q", s.Format.Name)
	}
	if s.Pattern != nil {
		fmt.Fprintf(b, "p%q", s.Pattern.String())
	}
	req := slices.Clone(s.Required)
	slices.Sort(req)
	fmt.Fprintf(b, "r%q", req)
	for _, n := range []*int{s.MinLength, s.MaxLength, s.MinItems, s.MaxItems, s.MinProperties, s.MaxProperties} {
		if n != nil {
			fmt.Fprintf(b, "n%d", *n)
		} else {
			b.WriteString("n")
		}
	}
	for _, r := range []*big.Rat{s.Minimum, s.Maximum, s.ExclusiveMinimum, s.ExclusiveMaximum, s.MultipleOf} {
		if r != nil {
			fmt.Fprintf(b, "q%s", r.RatString())
		} else {
			b.WriteString("q")
		}
	}
	for _, n := range sortedKeys(s.Properties) {
		fmt.Fprintf(b, "P%q:", n)
		fingerprintTo(b, s.Properties[n], depth-1)
	}
	for _, pp := range patterns(s) {
		fmt.Fprintf(b, "R%q:", pp.src)
		fingerprintTo(b, pp.s, depth-1)
	}
	if a, ok := s.AdditionalProperties.(bool); ok {
		fmt.Fprintf(b, "A%v", a)
	} else if a, ok := s.AdditionalProperties.(*jsch); ok {
		b.WriteString("A")
		fingerprintTo(b, a, depth-1)
	}
	for _, x := range []*jsch{s.Ref, s.RecursiveRef, s.Not, s.If, s.Then, s.Else, s.Items2020, s.Contains, s.UnevaluatedProperties, s.PropertyNames} {
		b.WriteString("S")
		if x != nil {
			fingerprintTo(b, x, depth-1)
		}
	}
	if it, ok := s.Items.(*jsch); ok {
		b.WriteString("I")
		fingerprintTo(b, it, depth-1)
	}
	for kw, l := range [][]*jsch{s.AllOf, s.AnyOf, s.OneOf, s.PrefixItems} {
		fmt.Fprintf(b, "L%d[", kw)
		for _, x := range l {
			fingerprintTo(b, x, depth-1)
		}
		b.WriteString("]")
	}
	b.WriteString("}")
}
