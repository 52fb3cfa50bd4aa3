package contract

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// Term is an example value with the matching rule a verifier applies to
// it, and optionally a generator. Build terms with Like, EachLike, Regex,
// Integer and the rest, and put them anywhere in a body, a header, a query
// value or a path given to a consumer test: the pact file gets the
// example and the rule at that place.
type Term struct {
	example any
	rule    *Matcher
	gen     Generator
	// each: the example is one element; the pact holds min copies.
	each     bool
	min, max int
	// variants of arrayContains, each with its own nested terms.
	variants []any
}

// Params are a provider state's parameters.
type Params map[string]any

// Like matches any value of the example's JSON type; objects key by key,
// arrays element by element like their first element.
func Like(example any) Term { return Term{example: example, rule: &Matcher{Type: "type"}} }

// EachLike is an array of at least min elements (min ≥ 1), each like
// example.
func EachLike(example any, min int) Term {
	if min < 1 {
		min = 1
	}
	return Term{example: example, each: true, min: min, rule: &Matcher{Type: "type", Min: intp(min)}}
}

// AtLeast is EachLike: an array of at least min elements like example.
func AtLeast(example any, min int) Term { return EachLike(example, min) }

// AtMost is an array of at most max elements (max ≥ 1), each like
// example; the pact's example has one.
func AtMost(example any, max int) Term {
	if max < 1 {
		max = 1
	}
	return Term{example: example, each: true, min: 1, rule: &Matcher{Type: "type", Max: intp(max)}}
}

// Between is an array of min to max elements, each like example.
func Between(example any, min, max int) Term {
	t := EachLike(example, min)
	t.rule.Max = intp(max)
	return t
}

// Regex matches strings the regular expression matches in full.
func Regex(pattern, example string) Term {
	return Term{example: example, rule: &Matcher{Type: "regex", Regex: pattern}}
}

// Integer matches integers.
func Integer(example int64) Term { return Term{example: example, rule: &Matcher{Type: "integer"}} }

// Decimal matches numbers with a fractional part.
func Decimal(example float64) Term {
	return Term{example: json.Number(decimalText(example)), rule: &Matcher{Type: "decimal"}}
}

func decimalText(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	for _, c := range s {
		if c == '.' || c == 'e' || c == 'E' {
			return s
		}
	}
	return s + ".0"
}

// Number matches any number.
func Number(example float64) Term { return Term{example: example, rule: &Matcher{Type: "number"}} }

// Boolean matches true and false.
func Boolean(example bool) Term { return Term{example: example, rule: &Matcher{Type: "boolean"}} }

// Null matches null.
func Null() Term { return Term{example: nil, rule: &Matcher{Type: "null"}} }

// Date matches dates in a Java DateTimeFormatter format ("yyyy-MM-dd").
func Date(format, example string) Term {
	return Term{example: example, rule: &Matcher{Type: "date", Format: format}}
}

// Time matches times in a Java DateTimeFormatter format ("HH:mm:ss").
func Time(format, example string) Term {
	return Term{example: example, rule: &Matcher{Type: "time", Format: format}}
}

// Timestamp matches date-times in a Java DateTimeFormatter format
// ("yyyy-MM-dd'T'HH:mm:ssXXX").
func Timestamp(format, example string) Term {
	return Term{example: example, rule: &Matcher{Type: "datetime", Format: format}}
}

// Equal matches only the example itself, also where an enclosing rule
// would match by type.
func Equal(example any) Term { return Term{example: example, rule: &Matcher{Type: "equality"}} }

// Includes matches strings that contain sub; the example is sub.
func Includes(sub string) Term {
	return Term{example: sub, rule: &Matcher{Type: "include", Value: sub}}
}

// NotEmpty matches a value of the example's type that is not empty.
func NotEmpty(example any) Term { return Term{example: example, rule: &Matcher{Type: "notEmpty"}} }

// Semver matches semantic versions.
func Semver(example string) Term { return Term{example: example, rule: &Matcher{Type: "semver"}} }

// Values matches an object by its values whatever its keys: each value
// like the example's.
func Values(example map[string]any) Term {
	return Term{example: example, rule: &Matcher{Type: "values"}}
}

// EachKey matches an object whose every key satisfies the key term
// (a Regex, say); values are matched like the example's.
func EachKey(example map[string]any, key Term) Term {
	r := []Matcher{}
	if key.rule != nil {
		r = append(r, *key.rule)
	}
	return Term{example: example, rule: &Matcher{Type: "eachKey", Rules: r}}
}

// EachValue matches a collection whose every value satisfies the value
// term.
func EachValue(example any, value Term) Term {
	r := []Matcher{}
	if value.rule != nil {
		r = append(r, *value.rule)
	}
	return Term{example: example, rule: &Matcher{Type: "eachValue", Rules: r}}
}

// ArrayContaining matches an array that has, in any order and among any
// other elements, one element like each variant.
func ArrayContaining(variants ...any) Term {
	return Term{variants: variants, rule: &Matcher{Type: "arrayContains"}}
}

// UUID matches UUIDs; the mock server and the verifier use a fresh one.
func UUID(example string) Term {
	return Term{example: example, rule: &Matcher{Type: "regex", Regex: `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`},
		gen: Generator{"type": "Uuid"}}
}

// FromProviderState is a value the provider state set-up supplies:
// expression names it ("${id}", or "/orders/${id}"). The verifier uses the
// value the state handler returned; the pact holds the example.
func FromProviderState(expression string, example any) Term {
	t := Like(example)
	t.gen = Generator{"type": "ProviderState", "expression": expression}
	return t
}

// Generated is example with a generator (Pact's: RandomInt, Date, Regex…)
// and no matching rule beyond the type.
func Generated(example any, g Generator) Term {
	t := Like(example)
	t.gen = g
	return t
}

// builtValue is a value with its rules and generators extracted.
type builtValue struct {
	example any
	rules   map[string]*RuleList
	gens    map[string]Generator
}

// build walks v, replacing terms by their examples and collecting their
// rules and generators by JSON path.
func build(v any) (builtValue, error) {
	bv := builtValue{rules: map[string]*RuleList{}, gens: map[string]Generator{}}
	ex, err := bv.walk(nil, v, 0)
	bv.example = ex
	return bv, err
}

const maxBuildDepth = 100

func (bv *builtValue) walk(path []token, v any, depth int) (any, error) {
	if depth > maxBuildDepth {
		return nil, fmt.Errorf("contract: value nested deeper than %d at %s", maxBuildDepth, pathString(path))
	}
	switch x := v.(type) {
	case Term:
		return bv.term(path, x, depth)
	case *Term:
		return bv.term(path, *x, depth)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			w, err := bv.walk(child(path, k), e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = w
		}
		return out, nil
	case Params:
		return bv.walk(path, map[string]any(x), depth)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			w, err := bv.walk(childIndex(path, i), e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case nil, string, bool, json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return normalize(x), nil
	case json.RawMessage:
		return decodeJSON(x)
	}
	// Other maps and slices are walked by reflection so terms inside them
	// are found; anything else goes through encoding/json.
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			m := make(map[string]any, rv.Len())
			for _, k := range rv.MapKeys() {
				m[k.String()] = rv.MapIndex(k).Interface()
			}
			return bv.walk(path, m, depth)
		}
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			break
		}
		s := make([]any, rv.Len())
		for i := range s {
			s[i] = rv.Index(i).Interface()
		}
		return bv.walk(path, s, depth)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("contract: value at %s: %w", pathString(path), err)
	}
	return decodeJSON(b)
}

func (bv *builtValue) term(path []token, t Term, depth int) (any, error) {
	key := pathString(path)
	if t.rule != nil {
		bv.rules[key] = &RuleList{Matchers: []Matcher{*t.rule}}
	}
	if t.gen != nil {
		bv.gens[key] = t.gen
	}
	if t.rule != nil && t.rule.Type == "arrayContains" {
		m := bv.rules[key].Matchers[0]
		arr := make([]any, 0, len(t.variants))
		for i, v := range t.variants {
			sub, err := build(v)
			if err != nil {
				return nil, err
			}
			arr = append(arr, sub.example)
			vr := Variant{Index: i, Rules: sub.rules}
			if len(sub.gens) > 0 {
				vr.Gens = sub.gens
			}
			m.Variants = append(m.Variants, vr)
		}
		bv.rules[key].Matchers[0] = m
		return arr, nil
	}
	if t.rule != nil && t.rule.Type == "eachKey" || t.rule != nil && t.rule.Type == "eachValue" {
		// The example's own terms (if any) apply to every value.
		ex, err := bv.walk(append(append([]token(nil), path...), token{star: true, index: -1}), t.example, depth+1)
		if err != nil {
			return nil, err
		}
		if m, ok := t.example.(map[string]any); ok && len(m) > 0 {
			// Rules were recorded under .*: fine for every key.
			_ = m
		}
		return ex, nil
	}
	if t.each {
		el, err := bv.walk(append(append([]token(nil), path...), token{star: true, index: -2}), t.example, depth+1)
		if err != nil {
			return nil, err
		}
		n := t.min
		if n < 1 {
			n = 1
		}
		arr := make([]any, n)
		for i := range arr {
			arr[i] = el
		}
		return arr, nil
	}
	return bv.walk(path, t.example, depth+1)
}

// scalarTerm returns the example text and rule of a header, query or path
// value given to the DSL: a string or a Term.
func scalarTerm(v any) (string, *RuleList, Generator, error) {
	switch x := v.(type) {
	case string:
		return x, nil, nil, nil
	case Term:
		s, ok := text(normalize(x.example))
		if !ok {
			return "", nil, nil, fmt.Errorf("contract: a header, query or path term needs a string example, not %T", x.example)
		}
		var l *RuleList
		if x.rule != nil {
			l = &RuleList{Matchers: []Matcher{*x.rule}}
		}
		return s, l, x.gen, nil
	case fmt.Stringer:
		return x.String(), nil, nil, nil
	}
	s, ok := text(normalize(v))
	if !ok {
		return "", nil, nil, fmt.Errorf("contract: a header, query or path value must be a string or a Term, not %T", v)
	}
	return s, nil, nil, nil
}
