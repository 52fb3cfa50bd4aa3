package contract

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
)

// genContext is what generators may draw on: the values provider-state
// set-up returned (ProviderState) and the mock server's URL
// (MockServerURL).
type genContext struct {
	state   map[string]any
	mockURL string
	now     time.Time
}

func randInt(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	n, err := rand.Int(rand.Reader, big.NewInt(hi-lo+1))
	if err != nil {
		return lo
	}
	return lo + n.Int64()
}

func num(v any, def int64) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case json.Number:
		n, err := x.Int64()
		if err == nil {
			return n
		}
	case int:
		return int64(x)
	case int64:
		return x
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err == nil {
			return n
		}
	}
	return def
}

// generate makes a value for g. example is the value it replaces; ok is
// false when the generator cannot make one here (a ProviderState value
// the state did not provide), and the example stays.
func generate(g Generator, example any, ctx genContext) (any, bool, error) {
	typ, _ := g["type"].(string)
	switch typ {
	case "RandomInt":
		return json.Number(strconv.FormatInt(randInt(num(g["min"], 0), num(g["max"], 2147483647)), 10)), true, nil
	case "RandomDecimal":
		d := num(g["digits"], 10)
		if d < 2 || d > 30 {
			d = 10
		}
		var b strings.Builder
		b.WriteString(strconv.FormatInt(randInt(1, 9), 10))
		dot := randInt(1, d-1)
		for i := int64(1); i < d; i++ {
			if i == dot {
				b.WriteByte('.')
			}
			b.WriteString(strconv.FormatInt(randInt(0, 9), 10))
		}
		return json.Number(b.String()), true, nil
	case "RandomHexadecimal":
		d := num(g["digits"], 10)
		if d < 1 || d > 256 {
			d = 10
		}
		buf := make([]byte, (d+1)/2)
		_, _ = rand.Read(buf)
		return hex.EncodeToString(buf)[:d], true, nil
	case "RandomString":
		n := num(g["size"], 20)
		if n < 0 || n > 4096 {
			n = 20
		}
		const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		b := make([]byte, n)
		for i := range b {
			b[i] = alnum[randInt(0, int64(len(alnum)-1))]
		}
		return string(b), true, nil
	case "Regex":
		re, _ := g["regex"].(string)
		s, err := fromRegex(re)
		if err != nil {
			return nil, false, fmt.Errorf("Regex generator %q: %w", re, err)
		}
		return s, true, nil
	case "Uuid":
		u := make([]byte, 16)
		_, _ = rand.Read(u)
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		h := hex.EncodeToString(u)
		hy := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		switch g["format"] {
		case "simple":
			return h, true, nil
		case "upper-case-hyphenated":
			return strings.ToUpper(hy), true, nil
		case "URN":
			return "urn:uuid:" + hy, true, nil
		}
		return hy, true, nil
	case "Date", "Time", "DateTime":
		f, _ := g["format"].(string)
		kind := map[string]string{"Date": "date", "Time": "time", "DateTime": "datetime"}[typ]
		now := ctx.now
		if now.IsZero() {
			now = time.Now()
		}
		s, err := formatDateTime(kind, f, now)
		if err != nil {
			return nil, false, err
		}
		return s, true, nil
	case "RandomBoolean":
		return randInt(0, 1) == 1, true, nil
	case "ProviderState":
		expr, _ := g["expression"].(string)
		return fromProviderState(expr, example, ctx.state)
	case "MockServerURL":
		if ctx.mockURL == "" {
			return nil, false, nil
		}
		ex, _ := g["example"].(string)
		if ex == "" {
			ex, _ = example.(string)
		}
		reStr, _ := g["regex"].(string)
		re, err := regexp.Compile(reStr)
		if err != nil {
			return nil, false, fmt.Errorf("MockServerURL generator regex %q: %w", reStr, err)
		}
		m := re.FindStringSubmatch(ex)
		if len(m) < 2 {
			return nil, false, nil
		}
		return strings.TrimRight(ctx.mockURL, "/") + "/" + strings.TrimLeft(m[1], "/"), true, nil
	case "":
		return nil, false, fmt.Errorf("generator without a type")
	}
	return nil, false, fmt.Errorf("unknown generator type %q", typ)
}

var stateExpr = regexp.MustCompile(`\$\{([^}]+)\}`)

// fromProviderState evaluates "${name}" expressions against the state's
// values. An expression that is one ${name} keeps the value's type.
func fromProviderState(expr string, example any, state map[string]any) (any, bool, error) {
	if state == nil {
		return nil, false, nil
	}
	if m := stateExpr.FindStringSubmatch(expr); m != nil && m[0] == expr {
		v, ok := lookupState(state, m[1])
		if !ok {
			return nil, false, nil
		}
		return normalize(v), true, nil
	}
	missing := false
	out := stateExpr.ReplaceAllStringFunc(expr, func(s string) string {
		v, ok := lookupState(state, s[2:len(s)-1])
		if !ok {
			missing = true
			return s
		}
		t, _ := text(normalize(v))
		return t
	})
	if missing {
		return nil, false, nil
	}
	if _, isNum := example.(json.Number); isNum {
		if _, err := strconv.ParseFloat(out, 64); err == nil {
			return json.Number(out), true, nil
		}
	}
	return out, true, nil
}

func lookupState(state map[string]any, name string) (any, bool) {
	name = strings.TrimSpace(name)
	var cur any = state
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[part]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// fromRegex makes a string the regular expression matches.
func fromRegex(p string) (string, error) {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := genRegex(&b, re.Simplify(), 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func genRegex(b *strings.Builder, re *syntax.Regexp, depth int) error {
	if depth > 100 || b.Len() > 1<<16 {
		return fmt.Errorf("regex too complex to generate from")
	}
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		if len(re.Rune) < 2 {
			return nil
		}
		// Prefer a printable ASCII rune of the class.
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if lo < 0x21 && hi >= 0x21 {
				lo = 0x21
			}
			if lo >= 0x21 && lo < 0x7f {
				if hi > 0x7e {
					hi = 0x7e
				}
				b.WriteRune(lo + rune(randInt(0, int64(hi-lo))))
				return nil
			}
		}
		b.WriteRune(re.Rune[0])
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		b.WriteByte('x')
	case syntax.OpCapture:
		return genRegex(b, re.Sub[0], depth+1)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if err := genRegex(b, s, depth+1); err != nil {
				return err
			}
		}
	case syntax.OpAlternate:
		return genRegex(b, re.Sub[randInt(0, int64(len(re.Sub)-1))], depth+1)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		lo, hi := 0, 3
		switch re.Op {
		case syntax.OpPlus:
			lo = 1
		case syntax.OpQuest:
			hi = 1
		case syntax.OpRepeat:
			lo, hi = re.Min, re.Max
			if hi < 0 || hi > lo+3 {
				hi = lo + 3
			}
		}
		n := int(randInt(int64(lo), int64(hi)))
		for i := 0; i < n; i++ {
			if err := genRegex(b, re.Sub[0], depth+1); err != nil {
				return err
			}
		}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
	default:
		return fmt.Errorf("cannot generate from %v", re.Op)
	}
	return nil
}

// applyBodyGenerators replaces the values at the generators' JSON paths.
func applyBodyGenerators(body Body, gens map[string]Generator, ctx genContext) (Body, error) {
	if len(gens) == 0 || !body.Present || len(body.Content) == 0 {
		return body, nil
	}
	if !body.isJSON() {
		if g, ok := gens["$"]; ok {
			v, ok, err := generate(g, string(body.Content), ctx)
			if err != nil || !ok {
				return body, err
			}
			s, _ := text(v)
			body.Content = []byte(s)
		}
		return body, nil
	}
	doc, err := decodeJSON(body.Content)
	if err != nil {
		return body, nil
	}
	type compiled struct {
		path []token
		g    Generator
	}
	var cs []compiled
	for _, k := range sortedKeys(gens) {
		p, err := parsePath(k)
		if err != nil {
			return body, fmt.Errorf("generator path %q: %w", k, err)
		}
		cs = append(cs, compiled{p, gens[k]})
	}
	var walkErr error
	var walk func(path []token, v any) any
	walk = func(path []token, v any) any {
		for _, c := range cs {
			if len(c.path) == len(path) && weight(c.path, path) > 0 {
				nv, ok, err := generate(c.g, v, ctx)
				if err != nil && walkErr == nil {
					walkErr = err
				}
				if ok {
					v = nv
				}
			}
		}
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(child(path, k), e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(childIndex(path, i), e)
			}
		}
		return v
	}
	doc = walk(nil, doc)
	if walkErr != nil {
		return body, walkErr
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return body, err
	}
	body.Content = b
	return body, nil
}

// applyValueGenerators replaces header, query or metadata values.
func applyStringGenerator(g Generator, cur string, ctx genContext) (string, error) {
	v, ok, err := generate(g, cur, ctx)
	if err != nil || !ok {
		return cur, err
	}
	s, _ := text(v)
	return s, nil
}
