package schema

import "slices"

// ---- arrays

// arrView is what one schema says about array items, in any draft: a
// tuple (prefixItems; before 2020-12, items as a list) and the schema of
// the items beyond it (items; before 2020-12, additionalItems after a
// tuple or items as a schema), or unevaluatedItems where nothing else
// evaluates them.
type arrView struct {
	prefix  []*jsch
	rest    *jsch  // nil: any further item; jsonFalse: none
	restKw  string // the keyword rest comes from
	restSet bool   // a keyword evaluates every item beyond the tuple
	has     bool   // the schema says anything about items
	uneval  bool   // rest comes from unevaluatedItems
}

func arrayView(s *jsch) arrView {
	v := arrView{restKw: "items"}
	if s.PrefixItems != nil || s.Items2020 != nil {
		v.prefix, v.has = s.PrefixItems, true
		if s.Items2020 != nil {
			v.rest, v.restSet = boolOrSchema(s.Items2020), true
		}
		return v
	}
	switch it := s.Items.(type) {
	case []*jsch:
		v.prefix, v.has, v.restKw = it, true, "additionalItems"
		v.rest, v.restSet = boolOrSchema(s.AdditionalItems), s.AdditionalItems != nil
	case *jsch:
		v.has, v.restSet = true, true
		v.rest = boolOrSchema(it)
	}
	return v
}

func (c *jsonCompat) arrays(conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	rv := arrayView(r)
	if !rv.restSet && r.UnevaluatedItems != nil {
		// Conservative for a reader: items its contains or its
		// conjuncts evaluate count as unevaluated here.
		rv.rest, rv.restKw = boolOrSchema(r.UnevaluatedItems), "unevaluatedItems"
	}
	restPath := path + "/" + rv.restKw

	wvs := make([]arrView, 0, len(conj))
	restSet, wPrefix := false, 0
	for _, s := range conj {
		v := arrayView(s)
		restSet = restSet || v.restSet || s.Contains != nil
		wPrefix = max(wPrefix, len(v.prefix))
		wvs = append(wvs, v)
	}
	// The writer's unevaluatedItems holds for the items no conjunct's
	// tuple, items or contains evaluates: those beyond the longest tuple
	// (2019-09 and 2020-12; prefixItems with unevaluatedItems is the
	// usual way to close or type a 2020-12 tuple).
	if !restSet && !hasBranches(conj) {
		for i, s := range conj {
			if s.UnevaluatedItems != nil {
				wvs[i].rest, wvs[i].uneval = boolOrSchema(s.UnevaluatedItems), true
			}
		}
	}
	wMax := minInt(conj, func(s *jsch) *int { return s.MaxItems })
	wMin := maxInt(conj, func(s *jsch) *int { return s.MinItems })
	n := len(rv.prefix)
	for _, v := range wvs {
		l := len(v.prefix)
		if v.uneval {
			l = wPrefix
		}
		if isFalse(v.rest) && (wMax == nil || l < *wMax) {
			wMax = &l
		}
		n = max(n, len(v.prefix))
	}
	for i := 0; i < n; i++ {
		if wMax != nil && i >= *wMax {
			break
		}
		var wl []*jsch
		wDecl := false
		for _, v := range wvs {
			if i < len(v.prefix) {
				wl = append(wl, v.prefix[i])
				wDecl = true
			} else if v.rest != nil && (!v.uneval || i >= wPrefix) {
				wl = append(wl, v.rest)
			}
		}
		rDecl := i < len(rv.prefix)
		rs := rv.rest
		if rDecl {
			rs = rv.prefix[i]
		}
		if isTrue(rs) {
			continue
		}
		switch {
		case wDecl && rDecl:
			vs = append(vs, c.subsetAny(wl, rs, loc(rs))...)
		case rDecl:
			switch modelOf(wl) {
			case modelClosed:
			case modelOpen:
				vs = append(vs, jsonViolation(ruleItemAddedOpen, loc(rs), "the reader declares tuple position %d, where the writer allows any item", i))
			case modelPartial:
				if sv := c.subsetAny(wl, rs, loc(rs)); len(sv) > 0 {
					vs = append(vs, strictIf(allStrict(sv), jsonViolation(ruleItemAddedPartial, loc(rs), "the reader declares tuple position %d, where the writer's items schema allows other values (%s)", i, first(sv))))
				}
			}
		case wDecl:
			if hasFalse(wl) {
				continue
			}
			if isFalse(rs) {
				vs = append(vs, jsonViolation(ruleItemRemovedClosed, restPath, "the writer declares tuple position %d; the reader's tuple is shorter and accepts no further items", i))
			} else if sv := c.subsetAny(wl, rs, locOr(rs, restPath)); len(sv) > 0 {
				vs = append(vs, strictIf(allStrict(sv), jsonViolation(ruleItemRemovedPartial, locOr(rs, restPath), "the writer declares tuple position %d; the reader's tuple is shorter and its %s does not accept the writer's values there (%s)", i, rv.restKw, first(sv))))
			}
		}
	}
	if rs := rv.rest; !isTrue(rs) && (wMax == nil || *wMax > n) {
		var wl []*jsch
		noPrefix := len(rv.prefix) == 0
		for _, v := range wvs {
			if v.rest != nil {
				wl = append(wl, v.rest)
			}
			noPrefix = noPrefix && len(v.prefix) == 0
		}
		switch {
		case hasFalse(wl):
		case noPrefix && !isFalse(rs):
			vs = append(vs, c.subsetAny(wl, rs, locOr(rs, restPath))...)
		case isFalse(rs):
			vs = append(vs, jsonViolation(ruleAddlItemsRemoved, restPath, "the reader accepts no items beyond position %d; the writer allows more", n))
		default:
			if sv := c.subsetAny(wl, rs, locOr(rs, restPath)); len(sv) > 0 {
				vs = append(vs, strictIf(allStrict(sv), jsonViolation(ruleAddlItemsNarrowed, locOr(rs, restPath), "the reader's %s accepts less than the writer allows beyond the tuple (%s)", rv.restKw, first(sv))))
			}
		}
	}
	if r.MaxItems != nil {
		switch {
		case wMax == nil:
			vs = append(vs, jsonViolation(ruleMaxItemsAdded, path, "the reader has maxItems %d, the writer none", *r.MaxItems))
		case *wMax > *r.MaxItems:
			vs = append(vs, jsonViolation(ruleMaxItemsDecreased, path, "the reader's maxItems %d is below the writer's %d", *r.MaxItems, *wMax))
		}
	}
	if r.MinItems != nil && *r.MinItems > 0 {
		switch {
		case wMin == nil:
			vs = append(vs, jsonViolation(ruleMinItemsAdded, path, "the reader has minItems %d, the writer none", *r.MinItems))
		case *wMin < *r.MinItems:
			vs = append(vs, jsonViolation(ruleMinItemsIncreased, path, "the reader's minItems %d is above the writer's %d", *r.MinItems, *wMin))
		}
	}
	if r.UniqueItems && !slices.ContainsFunc(conj, func(s *jsch) bool { return s.UniqueItems }) && (wMax == nil || *wMax > 1) {
		vs = append(vs, jsonViolation(ruleUniqueItemsAdded, path, "the reader has uniqueItems, the writer does not"))
	}
	vs = append(vs, c.contains(conj, wvs, wMin, r, path)...)
	return vs
}

func (c *jsonCompat) contains(conj []*jsch, wvs []arrView, wMin *int, r *jsch, path string) []Violation {
	rc := r.Contains
	if rc == nil {
		return nil
	}
	minC := 1
	if r.MinContains != nil {
		minC = *r.MinContains
	}
	if minC == 0 && r.MaxContains == nil {
		return nil
	}
	had := false
	for _, s := range conj {
		if s.Contains == nil {
			continue
		}
		had = true
		wMinC := 1
		if s.MinContains != nil {
			wMinC = *s.MinContains
		}
		if wMinC < minC {
			continue
		}
		if r.MaxContains == nil {
			if len(c.subset(s.Contains, rc, loc(rc))) == 0 {
				return nil
			}
		} else if c.same(s.Contains, rc) && s.MaxContains != nil && *s.MaxContains <= *r.MaxContains {
			return nil
		}
	}
	// Every item the writer allows matches contains, and there are enough.
	if r.MaxContains == nil && wMin != nil && *wMin >= minC {
		all := true
		for _, v := range wvs {
			for _, p := range v.prefix {
				all = all && len(c.subset(p, rc, loc(rc))) == 0
			}
			all = all && v.rest != nil && len(c.subset(v.rest, rc, loc(rc))) == 0
		}
		if all && len(wvs) > 0 {
			return nil
		}
	}
	if had {
		// Confluent compares minContains and maxContains, not the
		// contains schema itself.
		return []Violation{strictIf(!c.containsCountsTightened(conj, r), jsonViolation(ruleContainsNarrowed, loc(rc), "the reader's contains/minContains/maxContains accepts fewer arrays than the writer's"))}
	}
	// A draft-07 contains has no minContains, and Confluent's diff does
	// not see it added; from 2019-09 on, it reads as minContains 1 added.
	return []Violation{strictIf(r.DraftVersion < 2019, jsonViolation(ruleContainsAdded, loc(rc), "the reader has contains, the writer none: the writer's arrays need not contain such an item"))}
}

// containsCountsTightened reports whether the reader raises minContains or
// adds or lowers maxContains against every writer conjunct with contains.
func (c *jsonCompat) containsCountsTightened(conj []*jsch, r *jsch) bool {
	count := func(p *int, def int) int {
		if p == nil {
			return def
		}
		return *p
	}
	for _, s := range conj {
		if s.Contains == nil {
			continue
		}
		if count(r.MinContains, 1) <= count(s.MinContains, 1) &&
			(r.MaxContains == nil || s.MaxContains != nil && *r.MaxContains >= *s.MaxContains) {
			return false
		}
	}
	return true
}
