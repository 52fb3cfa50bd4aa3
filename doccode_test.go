package handoff_test

import (
	"go/ast"
	"go/doc"
	"go/doc/comment"
	"go/parser"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// docSnippetAllowed lists the Go snippets in doc comments that no Example
// backs, by "dir: where" (where is "package", a type, a function or
// Type.Method), each with the reason.
var docSnippetAllowed = map[string]string{}

// A doc snippet, found in a package's doc comments.
type docSnippet struct {
	dir, where, text string
}

// Every Go snippet in a doc comment is code that compiles: each of its lines
// stands, token for token, in one Example function of its package or in one
// program under examples/. A code block that is not Go (a table, JSON,
// YAML, a shell command) is left alone; a block that looks like Go but does
// not parse fails.
func TestDocSnippetsAreExamples(t *testing.T) {
	var snippets []docSnippet
	examples := map[string][]string{} // dir → squashed Example bodies
	var programs []string             // squashed files of examples/
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bench" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		s, ex, progs, err := docSnippetsIn(path)
		if err != nil {
			return err
		}
		snippets = append(snippets, s...)
		examples[path] = ex
		programs = append(programs, progs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(snippets) < 20 {
		t.Fatalf("found only %d doc snippets: the walk is broken", len(snippets))
	}
	used := map[string]bool{}
	for _, s := range snippets {
		key := s.dir + ": " + s.where
		frags, err := snippetFragments(s.text)
		if err != nil {
			t.Errorf("%s: a doc snippet that does not parse as Go: %v\n%s", key, err, s.text)
			continue
		}
		if frags == nil {
			continue // not Go
		}
		ok := backed(frags, examples[s.dir]) || backed(frags, programs)
		if _, allowed := docSnippetAllowed[key]; allowed {
			used[key] = used[key] || !ok
			continue
		}
		if !ok {
			t.Errorf("%s: a doc snippet that no Example of its package and no program under examples/ holds (missing: %q):\n%s",
				key, missing(frags, append(examples[s.dir], programs...)), s.text)
		}
	}
	for key := range docSnippetAllowed {
		if !used[key] {
			t.Errorf("docSnippetAllowed names %q, which has no Go snippet that an Example lacks now: drop it", key)
		}
	}
}

// docSnippetsIn returns the code blocks of the doc comments of the package
// in dir, the squashed bodies of its Example functions, and, under
// examples/, its squashed files.
func docSnippetsIn(dir string) (snippets []docSnippet, examples, programs []string, err error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, nil, parser.ParseComments)
	if err != nil {
		return nil, nil, nil, err
	}
	names := make([]string, 0, len(pkgs))
	for name := range pkgs {
		names = append(names, name)
	}
	sort.Strings(names)
	inExamples := strings.HasPrefix(filepath.ToSlash(dir), "examples/")
	for _, name := range names {
		var files, tests []*ast.File
		fnames := make([]string, 0, len(pkgs[name].Files))
		for fn := range pkgs[name].Files {
			fnames = append(fnames, fn)
		}
		sort.Strings(fnames)
		for _, fn := range fnames {
			f := pkgs[name].Files[fn]
			src, err := os.ReadFile(fn)
			if err != nil {
				return nil, nil, nil, err
			}
			if strings.HasSuffix(fn, "_test.go") {
				tests = append(tests, f)
				for _, d := range f.Decls {
					if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Example") && fd.Body != nil {
						body := src[fset.Position(fd.Body.Pos()).Offset:fset.Position(fd.Body.End()).Offset]
						examples = append(examples, squash(string(body)))
					}
				}
				continue
			}
			files = append(files, f)
			if inExamples {
				programs = append(programs, squash(string(src)))
			}
		}
		if len(files) == 0 {
			continue
		}
		p, err := doc.NewFromFiles(fset, files, "example.invalid/"+filepath.ToSlash(dir), doc.AllDecls)
		if err != nil {
			return nil, nil, nil, err
		}
		add := func(where, text string) {
			var pr comment.Parser
			for _, b := range pr.Parse(text).Content {
				if c, ok := b.(*comment.Code); ok {
					snippets = append(snippets, docSnippet{dir, where, c.Text})
				}
			}
		}
		add("package", p.Doc)
		values := func(vs []*doc.Value) {
			for _, v := range vs {
				add(strings.Join(v.Names, ","), v.Doc)
			}
		}
		values(p.Consts)
		values(p.Vars)
		for _, f := range p.Funcs {
			add(f.Name, f.Doc)
		}
		for _, ty := range p.Types {
			add(ty.Name, ty.Doc)
			values(ty.Consts)
			values(ty.Vars)
			for _, f := range ty.Funcs {
				add(f.Name, f.Doc)
			}
			for _, f := range ty.Methods {
				add(ty.Name+"."+f.Name, f.Doc)
			}
		}
	}
	return snippets, examples, programs, nil
}

// placeholders are the "..." a snippet writes for what it leaves out: a
// line of its own, the last argument, or a composite literal's fields.
var placeholders = regexp.MustCompile(`(?m)^\s*\.\.\.\s*$|, \.\.\.\)|\{\.\.\.\}`)

var wordy = regexp.MustCompile(`[\pL_]`)

// snippetFragments returns, for a code block that is Go, the squashed
// pieces each of its lines must show in one Example (a line is cut at each
// "..."); nil for a block that is not Go. A block that does not parse is Go
// with an error when it declares a variable (":="), else not Go.
func snippetFragments(text string) ([]string, error) {
	stripped := placeholders.ReplaceAllStringFunc(text, func(m string) string {
		switch {
		case strings.HasPrefix(m, ","):
			return ")"
		case strings.HasPrefix(m, "{"):
			return "{}"
		}
		return ""
	})
	fset := token.NewFileSet()
	_, err := parser.ParseFile(fset, "snippet.go", "package p\nfunc _() {\n"+stripped+"\n}\n", parser.SkipObjectResolution)
	if err != nil {
		if _, err2 := parser.ParseFile(fset, "snippet.go", "package p\n"+stripped, parser.SkipObjectResolution); err2 == nil {
			err = nil
		}
	}
	if err != nil {
		if strings.Contains(text, ":=") {
			return nil, err
		}
		return nil, nil
	}
	var frags []string
	for _, line := range strings.Split(text, "\n") {
		for _, f := range squashParts(line) {
			if wordy.MatchString(f) {
				frags = append(frags, f)
			}
		}
	}
	if frags == nil {
		frags = []string{}
	}
	return frags, nil
}

// squash returns src's Go tokens, comments and line breaks dropped, run
// together: two pieces of code compare alike however they are laid out.
func squash(src string) string { return strings.Join(squashParts(src), "...") }

// squashParts is squash cut at each "..." token.
func squashParts(src string) []string {
	var s scanner.Scanner
	fset := token.NewFileSet()
	f := fset.AddFile("", fset.Base(), len(src))
	s.Init(f, []byte(src), func(token.Position, string) {}, 0)
	var parts []string
	var b strings.Builder
	for {
		_, tok, lit := s.Scan()
		switch {
		case tok == token.EOF:
			return append(parts, b.String())
		case tok == token.ELLIPSIS:
			parts = append(parts, b.String())
			b.Reset()
			continue
		case tok == token.SEMICOLON && lit == "\n":
			continue
		case lit == "":
			lit = tok.String()
		}
		if b.Len() > 0 && isWordy(lit) && isWordy(b.String()[b.Len()-1:]) {
			b.WriteByte(' ')
		}
		b.WriteString(lit)
	}
}

func isWordy(s string) bool {
	r := s[0]
	return r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80
}

// backed reports whether one of the bodies holds every fragment.
func backed(frags []string, bodies []string) bool {
	for _, b := range bodies {
		if missing(frags, []string{b}) == "" {
			return true
		}
	}
	return false
}

// missing returns the first fragment the body that holds the most of them
// lacks ("" when one holds them all).
func missing(frags []string, bodies []string) string {
	best, first := -1, ""
	for _, b := range bodies {
		n, miss := 0, ""
		for _, f := range frags {
			if strings.Contains(b, f) {
				n++
			} else if miss == "" {
				miss = f
			}
		}
		if miss == "" {
			return ""
		}
		if n > best {
			best, first = n, miss
		}
	}
	if best < 0 && len(frags) > 0 {
		return frags[0]
	}
	return first
}

// The check itself: a snippet is backed only when one body holds every
// line of it, "..." stands for anything, layout and comments do not count,
// tables are not Go, and Go that does not parse is an error.
func TestDocSnippetsAreExamples_Check(t *testing.T) {
	body := squash(`{
	b, err := breaker.New("payments",
		breaker.WithCountWindow(100)) // a comment
	if err != nil {
		return err
	}
	p, err := b.Allow()
}`)
	for _, c := range []struct {
		snippet string
		want    bool
	}{
		{"b, err := breaker.New(\"payments\", breaker.WithCountWindow(100))\n...\np, err := b.Allow() // fail fast\n", true},
		{"b, err := breaker.New(\"payments\", ...)\n", true},
		{"b, err := breaker.New(\"payments\", breaker.WithCountWindow(10))\n", false},
		{"b, err := breaker.New(\"payments\", breaker.WithCountWindow(100))\np.Done(err)\n", false},
	} {
		frags, err := snippetFragments(c.snippet)
		if err != nil || frags == nil {
			t.Fatalf("%q: not seen as Go (%v)", c.snippet, err)
		}
		if got := backed(frags, []string{body}); got != c.want {
			t.Errorf("%q: backed = %v, want %v", c.snippet, got, c.want)
		}
	}
	for _, table := range []string{"retry → bulkhead → call\n", "GET /{id}             one letter\n", "go run ./examples/demo -orders 10\n", "{\n  \"id\": \"0197…\",\n}\n"} {
		if frags, err := snippetFragments(table); frags != nil || err != nil {
			t.Errorf("%q: seen as Go (%q, %v)", table, frags, err)
		}
	}
	if _, err := snippetFragments("q, err := dlq.New(store,\n"); err == nil {
		t.Error("a Go snippet that does not parse passed")
	}
}
