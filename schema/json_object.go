package schema

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// ---- objects

// writerName lists the writer schemas that apply to property n (one per
// conjunct that constrains it; jsonFalse when a conjunct forbids it) and
// whether a conjunct declares n in properties.
func (c *jsonCompat) writerName(conj []*jsch, n string) (list []*jsch, declared bool) {
	evaluated := false
	for _, s := range conj {
		matched := false
		if p, ok := s.Properties[n]; ok {
			list = append(list, p)
			matched, declared = true, true
		}
		for _, pp := range patterns(s) {
			if pp.re.MatchString(n) {
				list = append(list, pp.s)
				matched = true
			}
		}
		if matched {
			evaluated = true
			continue
		}
		if s.AdditionalProperties != nil {
			evaluated = true
			if a := boolOrSchema(s.AdditionalProperties); a != nil {
				list = append(list, a)
			}
		}
	}
	if !evaluated && !hasBranches(conj) {
		for _, s := range conj {
			if s.UnevaluatedProperties != nil && !isTrue(s.UnevaluatedProperties) {
				list = append(list, s.UnevaluatedProperties)
			}
		}
	}
	return list, declared
}

// writerAdditional lists the writer schemas for a property no conjunct
// declares or matches by pattern.
func (c *jsonCompat) writerAdditional(conj []*jsch) []*jsch {
	var list []*jsch
	any := false
	for _, s := range conj {
		if s.AdditionalProperties != nil {
			any = true
			if a := boolOrSchema(s.AdditionalProperties); a != nil {
				list = append(list, a)
			}
		}
	}
	if !any && !hasBranches(conj) {
		for _, s := range conj {
			if s.UnevaluatedProperties != nil && !isTrue(s.UnevaluatedProperties) {
				list = append(list, s.UnevaluatedProperties)
			}
		}
	}
	return list
}

// hasPatterns reports whether a conjunct has patternProperties.
func hasPatterns(conj []*jsch) bool {
	return slices.ContainsFunc(conj, func(s *jsch) bool { return len(s.PatternProperties) > 0 })
}

// hasBranches reports whether a conjunct has subschemas that apply only
// sometimes (and may evaluate properties or items).
func hasBranches(conj []*jsch) bool {
	for _, s := range conj {
		if len(s.AnyOf) > 0 || len(s.OneOf) > 0 || s.If != nil || len(s.DependentSchemas) > 0 || len(s.Dependencies) > 0 {
			return true
		}
	}
	return false
}

// readerAdditional is the reader's schema for properties it neither
// declares nor matches by pattern, and the keyword it comes from.
func (c *jsonCompat) readerAdditional(r *jsch) (*jsch, string) {
	if r.AdditionalProperties != nil {
		return boolOrSchema(r.AdditionalProperties), "additionalProperties"
	}
	if r.UnevaluatedProperties != nil {
		// Conservative: names evaluated only by r's conjuncts count as
		// unevaluated here, unless a conjunct declares them (readerName).
		if isTrue(r.UnevaluatedProperties) {
			return nil, "unevaluatedProperties"
		}
		return r.UnevaluatedProperties, "unevaluatedProperties"
	}
	return nil, "additionalProperties"
}

// readerName lists the reader schemas for property n.
func (c *jsonCompat) readerName(r *jsch, n string) (list []*jsch, declared bool) {
	if p, ok := r.Properties[n]; ok {
		list = append(list, p)
		declared = true
	}
	matched := declared
	for _, pp := range patterns(r) {
		if pp.re.MatchString(n) {
			list = append(list, pp.s)
			matched = true
		}
	}
	if matched {
		return list, declared
	}
	add, kw := c.readerAdditional(r)
	if add == nil {
		return list, declared
	}
	if kw == "unevaluatedProperties" {
		for _, s := range c.closure(r)[1:] {
			if _, ok := s.Properties[n]; ok || s.AdditionalProperties != nil {
				return list, declared
			}
			for _, pp := range patterns(s) {
				if pp.re.MatchString(n) {
					return list, declared
				}
			}
		}
	}
	return append(list, add), declared
}

type contentModel int

const (
	modelOpen contentModel = iota
	modelPartial
	modelClosed
)

func modelOf(list []*jsch) contentModel {
	if hasFalse(list) {
		return modelClosed
	}
	if !slices.ContainsFunc(list, func(s *jsch) bool { return !isTrue(s) }) {
		return modelOpen
	}
	return modelPartial
}

func first(vs []Violation) string {
	if len(vs) == 0 {
		return ""
	}
	return fmt.Sprintf("%s at %s: %s", vs[0].Rule, pathOrRoot(vs[0].Path), vs[0].Message)
}

func (c *jsonCompat) objects(w *jsch, conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	names := map[string]bool{}
	for _, s := range conj {
		for n := range s.Properties {
			names[n] = true
		}
	}
	for n := range r.Properties {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		wl, wDecl := c.writerName(conj, n)
		rl, rDecl := c.readerName(r, n)
		propPath := path + "/properties/" + escapePointer(n)
		if rDecl {
			propPath = loc(r.Properties[n])
		}
		switch {
		case wDecl && rDecl:
			for _, rs := range rl {
				vs = append(vs, c.subsetAny(wl, rs, locOr(rs, propPath))...)
			}
		case rDecl: // added by the reader
			switch modelOf(wl) {
			case modelClosed:
			case modelOpen:
				if slices.ContainsFunc(rl, func(s *jsch) bool { return !isTrue(s) }) {
					// Confluent counts a writer with patternProperties (none
					// matching) and no additionalProperties as closed.
					vs = append(vs, strictIf(len(wl) == 0 && hasPatterns(conj), jsonViolation(rulePropAddedOpen, propPath, "the reader declares property %q, which the writer does not declare while its content model is open: the writer's data may carry %q with any value", n, n)))
				}
			case modelPartial:
				for _, rs := range rl {
					if sv := c.subsetAny(wl, rs, locOr(rs, propPath)); len(sv) > 0 {
						vs = append(vs, strictIf(allStrict(sv), jsonViolation(rulePropAddedPartial, propPath, "the reader declares property %q, which the writer does not declare; the writer's additionalProperties/patternProperties allow other values for it (%s)", n, first(sv))))
						break
					}
				}
			}
		case wDecl: // removed by the reader
			if hasFalse(wl) {
				continue
			}
			switch modelOf(rl) {
			case modelOpen:
			case modelClosed:
				vs = append(vs, jsonViolation(rulePropRemovedClosed, propPath, "the writer declares property %q, which the reader does not declare while its content model is closed: data carrying it fails the reader", n))
			case modelPartial:
				for _, rs := range rl {
					if sv := c.subsetAny(wl, rs, locOr(rs, propPath)); len(sv) > 0 {
						vs = append(vs, strictIf(allStrict(sv), jsonViolation(rulePropRemovedPartial, propPath, "the writer declares property %q, which the reader does not declare; the reader's additionalProperties/patternProperties do not accept the writer's values for it (%s)", n, first(sv))))
						break
					}
				}
			}
		}
	}
	vs = append(vs, c.freshNames(conj, r, path)...)
	vs = append(vs, c.required(conj, r, path)...)
	vs = append(vs, c.objectCounts(conj, r, path)...)
	vs = append(vs, c.propertyNames(conj, r, path)...)
	vs = append(vs, c.dependencies(w, conj, r, path)...)
	return vs
}

// patternsMayOverlap is false only when both patterns are anchored at the
// start with literal prefixes that no name can share.
func patternsMayOverlap(p, q string) bool {
	lp, okp := anchoredPrefix(p)
	lq, okq := anchoredPrefix(q)
	if !okp || !okq {
		return true
	}
	return strings.HasPrefix(lp, lq) || strings.HasPrefix(lq, lp)
}

func anchoredPrefix(p string) (string, bool) {
	if !strings.HasPrefix(p, "^") {
		return "", false
	}
	re, err := regexp.Compile(p[1:])
	if err != nil {
		return "", false
	}
	pre, _ := re.LiteralPrefix()
	return pre, pre != ""
}

// freshNames compares what the two schemas say about properties neither
// declares: additionalProperties, unevaluatedProperties, patternProperties.
func (c *jsonCompat) freshNames(conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	wAdd := c.writerAdditional(conj)
	rAdd, rKw := c.readerAdditional(r)
	addPath := path + "/" + rKw
	if rAdd != nil && !hasFalse(wAdd) {
		if isFalse(rAdd) {
			vs = append(vs, jsonViolation(ruleAddlPropsRemoved, addPath, "the reader rejects undeclared properties, which the writer allows"))
		} else if sv := c.subsetAny(wAdd, rAdd, locOr(rAdd, addPath)); len(sv) > 0 {
			vs = append(vs, strictIf(allStrict(sv), jsonViolation(ruleAddlPropsNarrowed, locOr(rAdd, addPath), "the reader's %s accepts less than the writer allows for undeclared properties (%s)", rKw, first(sv))))
		}
	}
	var wPats []patProp
	seen := map[string]bool{}
	for _, s := range conj {
		for _, pp := range patterns(s) {
			if !seen[pp.src] {
				seen[pp.src] = true
				wPats = append(wPats, pp)
			}
		}
	}
	rPats := patterns(r)
	rSrc := map[string]bool{}
	for _, q := range rPats {
		rSrc[q.src] = true
		for _, p := range wPats {
			if p.src == q.src || patternsMayOverlap(p.src, q.src) {
				if sv := c.subset(p.s, q.s, loc(q.s)); len(sv) > 0 {
					vs = append(vs, strictIf(true, jsonViolation(rulePatternPropsNarrowed, loc(q.s), "patternProperties %q accepts less than the writer's %q for names both match (%s)", q.src, p.src, first(sv))))
					break
				}
			}
		}
		if !seen[q.src] && !hasFalse(wAdd) {
			if sv := c.subsetAny(wAdd, q.s, loc(q.s)); len(sv) > 0 {
				vs = append(vs, strictIf(true, jsonViolation(rulePatternPropAdded, loc(q.s), "the reader has patternProperties %q, which the writer lacks; undeclared properties the writer allows may match it with other values (%s)", q.src, first(sv))))
			}
		}
	}
	for _, p := range wPats {
		if rSrc[p.src] || rAdd == nil {
			continue
		}
		if isFalse(rAdd) {
			vs = append(vs, strictIf(true, jsonViolation(rulePatternPropsNarrowed, addPath, "the writer allows properties matching %q, which the reader's closed content model rejects", p.src)))
		} else if sv := c.subset(p.s, rAdd, locOr(rAdd, addPath)); len(sv) > 0 {
			vs = append(vs, strictIf(true, jsonViolation(rulePatternPropsNarrowed, locOr(rAdd, addPath), "the writer allows properties matching %q with values the reader's %s rejects (%s)", p.src, rKw, first(sv))))
		}
	}
	return vs
}

func (c *jsonCompat) required(conj []*jsch, r *jsch, path string) []Violation {
	have := map[string]bool{}
	for _, s := range conj {
		for _, n := range s.Required {
			have[n] = true
		}
	}
	var vs []Violation
	done := map[string]bool{}
	for _, n := range r.Required {
		if have[n] || done[n] {
			continue
		}
		done[n] = true
		propPath := path + "/properties/" + escapePointer(n)
		rp, rDecl := r.Properties[n]
		if rDecl {
			propPath = loc(rp)
		}
		// Confluent compares required only for properties the reader's
		// object declares, and accepts a requirement whose property has
		// a default (except for a new property of an open writer).
		withDefault := rDecl && rp.Default != nil
		wl, wDecl := c.writerName(conj, n)
		switch {
		case wDecl && !hasFalse(wl):
			vs = append(vs, strictIf(!rDecl || withDefault, jsonViolation(ruleRequiredAttrAdded, propPath, "the reader requires property %q, which the writer does not require: data written without it fails the reader", n)))
		case modelOf(wl) == modelOpen:
			vs = append(vs, strictIf(!rDecl || isTrue(rp), jsonViolation(ruleRequiredAttrAdded, propPath, "the reader requires property %q, which the writer neither declares nor requires while its content model is open: data written without it fails the reader", n)))
		default:
			vs = append(vs, strictIf(!rDecl || withDefault, jsonViolation(ruleRequiredPropAddedUnopen, propPath, "the reader requires property %q, which the writer's content model (not open) does not declare: the writer's data lacks it", n)))
		}
	}
	return vs
}

func (c *jsonCompat) objectCounts(conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	if r.MaxProperties != nil {
		switch m := minInt(conj, func(s *jsch) *int { return s.MaxProperties }); {
		case m == nil:
			vs = append(vs, jsonViolation(ruleMaxPropsAdded, path, "the reader has maxProperties %d, the writer none", *r.MaxProperties))
		case *m > *r.MaxProperties:
			vs = append(vs, jsonViolation(ruleMaxPropsDecreased, path, "the reader's maxProperties %d is below the writer's %d", *r.MaxProperties, *m))
		}
	}
	if r.MinProperties != nil && *r.MinProperties > 0 {
		m := maxInt(conj, func(s *jsch) *int { return s.MinProperties })
		req := map[string]bool{}
		for _, s := range conj {
			for _, n := range s.Required {
				req[n] = true
			}
		}
		if m == nil || *m < len(req) {
			n := len(req)
			m = &n
		}
		switch {
		case *m >= *r.MinProperties:
		case *m == 0:
			vs = append(vs, jsonViolation(ruleMinPropsAdded, path, "the reader has minProperties %d, the writer none", *r.MinProperties))
		default:
			vs = append(vs, jsonViolation(ruleMinPropsIncreased, path, "the reader's minProperties %d is above the writer's %d", *r.MinProperties, *m))
		}
	}
	return vs
}

func (c *jsonCompat) propertyNames(conj []*jsch, r *jsch, path string) []Violation {
	pn := r.PropertyNames
	if isTrue(pn) {
		return nil
	}
	pnPath := loc(pn)
	// A closed writer without patterns can only send its declared names.
	if hasFalse(c.writerAdditional(conj)) && !slices.ContainsFunc(conj, func(s *jsch) bool { return len(s.PatternProperties) > 0 }) {
		var bad []string
		for _, s := range conj {
			for _, n := range sortedKeys(s.Properties) {
				if wl, _ := c.writerName(conj, n); !hasFalse(wl) && pn.Validate(n) != nil {
					bad = append(bad, strconvQuote(n))
				}
			}
		}
		if len(bad) == 0 {
			return nil
		}
		return []Violation{strictIf(true, jsonViolation(rulePropertyNamesNarrowed, pnPath, "the reader's propertyNames rejects %s, which the writer allows", strings.Join(bad, ", ")))}
	}
	if len(c.subset(jsonNameSchema, pn, pnPath)) == 0 {
		return nil
	}
	for _, s := range conj {
		if s.PropertyNames != nil && len(c.subset(s.PropertyNames, pn, pnPath)) == 0 {
			return nil
		}
	}
	return []Violation{strictIf(true, jsonViolation(rulePropertyNamesNarrowed, pnPath, "the reader's propertyNames may reject property names the writer allows"))}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func depArrays(s *jsch) map[string][]string {
	m := map[string][]string{}
	for k, v := range s.DependentRequired {
		m[k] = append(m[k], v...)
	}
	for k, v := range s.Dependencies {
		if a, ok := v.([]string); ok {
			m[k] = append(m[k], a...)
		}
	}
	return m
}

func depSchemas(s *jsch) map[string]*jsch {
	m := map[string]*jsch{}
	for k, v := range s.DependentSchemas {
		m[k] = v
	}
	for k, v := range s.Dependencies {
		if d, ok := v.(*jsch); ok {
			m[k] = d
		}
	}
	return m
}

func (c *jsonCompat) dependencies(w *jsch, conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	kw := "dependentRequired"
	if len(r.Dependencies) > 0 {
		kw = "dependencies"
	}
	rd := depArrays(r)
	if len(rd) > 0 {
		wd := map[string]map[string]bool{}
		req := map[string]bool{}
		for _, s := range conj {
			for _, n := range s.Required {
				req[n] = true
			}
			for k, v := range depArrays(s) {
				if wd[k] == nil {
					wd[k] = map[string]bool{}
				}
				for _, n := range v {
					wd[k][n] = true
				}
			}
		}
		for _, k := range sortedKeys(rd) {
			if wl, _ := c.writerName(conj, k); hasFalse(wl) {
				continue // the writer never sends k
			}
			var missing []string
			for _, n := range rd[k] {
				if !req[n] && !wd[k][n] {
					missing = append(missing, strconvQuote(n))
				}
			}
			if len(missing) == 0 {
				continue
			}
			p := path + "/" + kw + "/" + escapePointer(k)
			if wd[k] == nil {
				vs = append(vs, jsonViolation(ruleDepArrayAdded, p, "the reader requires %s whenever %q is present; the writer has no such dependency", strings.Join(missing, ", "), k))
			} else {
				vs = append(vs, jsonViolation(ruleDepArrayExtended, p, "the reader requires %s whenever %q is present; the writer's dependency does not", strings.Join(missing, ", "), k))
			}
		}
	}
	rs := depSchemas(r)
	for _, k := range sortedKeys(rs) {
		ds := rs[k]
		if wl, _ := c.writerName(conj, k); hasFalse(wl) {
			continue
		}
		if len(c.subset(w, ds, loc(ds))) == 0 {
			continue
		}
		had, ok := false, false
		for _, s := range conj {
			if wds, found := depSchemas(s)[k]; found {
				had = true
				if len(c.subset(wds, ds, loc(ds))) == 0 {
					ok = true
				}
			}
		}
		switch {
		case ok:
		case had:
			vs = append(vs, jsonViolation(ruleDepSchemaNarrowed, loc(ds), "the reader's dependent schema for %q accepts less than the writer's", k))
		default:
			vs = append(vs, jsonViolation(ruleDepSchemaAdded, loc(ds), "the reader has a dependent schema for %q, the writer none", k))
		}
	}
	return vs
}
