package schema

import (
	"math/big"
	"reflect"
	"slices"
)

// ---- structural identity (the fast path)

// same reports whether a and b are the same schema: every assertion equal,
// subschemas compared recursively (pairs under comparison count as equal,
// so recursive schemas terminate).
func (c *jsonCompat) same(a, b *jsch) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return isTrue(a) && isTrue(b)
	}
	pair := [2]*jsch{a, b}
	if v, ok := c.same_[pair]; ok {
		return v
	}
	c.same_[pair] = true // assumed while comparing
	v := c.sameFields(a, b)
	c.same_[pair] = v
	return v
}

func (c *jsonCompat) sameList(a, b []*jsch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !c.same(a[i], b[i]) {
			return false
		}
	}
	return true
}

func (c *jsonCompat) sameMap(a, b map[string]*jsch) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !c.same(x, y) {
			return false
		}
	}
	return true
}

// sameAny compares the any-typed fields: nil, bool, *Schema, []*Schema,
// []string.
func (c *jsonCompat) sameAny(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case *jsch:
		y, ok := b.(*jsch)
		return ok && c.same(x, y)
	case []*jsch:
		y, ok := b.([]*jsch)
		return ok && c.sameList(x, y)
	case []string:
		y, ok := b.([]string)
		return ok && slices.Equal(x, y)
	}
	return false
}

func sameInt(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func sameRat(a, b *big.Rat) bool { return (a == nil) == (b == nil) && (a == nil || a.Cmp(b) == 0) }

func sameStrings(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func (c *jsonCompat) sameFields(a, b *jsch) bool {
	if (a.Bool == nil) != (b.Bool == nil) || a.Bool != nil && *a.Bool != *b.Bool {
		return isTrue(a) && isTrue(b)
	}
	if len(a.Extensions) > 0 || len(b.Extensions) > 0 {
		return false
	}
	ta, tb := declaredTypes(a), declaredTypes(b)
	if ta != tb {
		return false
	}
	if (a.Enum == nil) != (b.Enum == nil) || a.Enum != nil && !reflect.DeepEqual(a.Enum.Values, b.Enum.Values) {
		return false
	}
	if (a.Const == nil) != (b.Const == nil) || a.Const != nil && !reflect.DeepEqual(*a.Const, *b.Const) {
		return false
	}
	if (a.Format == nil) != (b.Format == nil) || a.Format != nil && a.Format.Name != b.Format.Name {
		return false
	}
	if (a.Pattern == nil) != (b.Pattern == nil) || a.Pattern != nil && a.Pattern.String() != b.Pattern.String() {
		return false
	}
	if (a.DynamicRef == nil) != (b.DynamicRef == nil) || a.DynamicRef != nil && (a.DynamicRef.Anchor != b.DynamicRef.Anchor || !c.same(a.DynamicRef.Ref, b.DynamicRef.Ref)) {
		return false
	}
	if !sameInt(a.MaxProperties, b.MaxProperties) || !sameInt(a.MinProperties, b.MinProperties) ||
		!sameInt(a.MinItems, b.MinItems) || !sameInt(a.MaxItems, b.MaxItems) ||
		!sameInt(a.MinContains, b.MinContains) || !sameInt(a.MaxContains, b.MaxContains) ||
		!sameInt(a.MinLength, b.MinLength) || !sameInt(a.MaxLength, b.MaxLength) ||
		a.UniqueItems != b.UniqueItems || !sameStrings(a.Required, b.Required) {
		return false
	}
	if !sameRat(a.Maximum, b.Maximum) || !sameRat(a.Minimum, b.Minimum) || !sameRat(a.ExclusiveMaximum, b.ExclusiveMaximum) ||
		!sameRat(a.ExclusiveMinimum, b.ExclusiveMinimum) || !sameRat(a.MultipleOf, b.MultipleOf) {
		return false
	}
	if len(a.DependentRequired) != len(b.DependentRequired) {
		return false
	}
	for k, v := range a.DependentRequired {
		if w, ok := b.DependentRequired[k]; !ok || !sameStrings(v, w) {
			return false
		}
	}
	if len(a.Dependencies) != len(b.Dependencies) {
		return false
	}
	for k, v := range a.Dependencies {
		if w, ok := b.Dependencies[k]; !ok || !c.sameAny(v, w) {
			return false
		}
	}
	pa, pb := patterns(a), patterns(b)
	if len(pa) != len(pb) {
		return false
	}
	for i := range pa {
		if pa[i].src != pb[i].src || !c.same(pa[i].s, pb[i].s) {
			return false
		}
	}
	for _, p := range [][2]*jsch{
		{a.Ref, b.Ref}, {a.RecursiveRef, b.RecursiveRef}, {a.Not, b.Not}, {a.If, b.If}, {a.Then, b.Then},
		{a.Else, b.Else}, {a.PropertyNames, b.PropertyNames}, {a.UnevaluatedProperties, b.UnevaluatedProperties},
		{a.Contains, b.Contains}, {a.Items2020, b.Items2020}, {a.UnevaluatedItems, b.UnevaluatedItems},
	} {
		if (p[0] == nil) != (p[1] == nil) || !c.same(p[0], p[1]) {
			return false
		}
	}
	return c.sameList(a.AllOf, b.AllOf) && c.sameList(a.AnyOf, b.AnyOf) && c.sameList(a.OneOf, b.OneOf) &&
		c.sameList(a.PrefixItems, b.PrefixItems) && c.sameMap(a.Properties, b.Properties) &&
		c.sameMap(a.DependentSchemas, b.DependentSchemas) && c.sameAny(a.AdditionalProperties, b.AdditionalProperties) &&
		c.sameAny(a.Items, b.Items) && c.sameAny(a.AdditionalItems, b.AdditionalItems)
}
