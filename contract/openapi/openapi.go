package openapi

import (
	"errors"
	"fmt"
	"sort"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/oasdiff/oasdiff/checker"
	"github.com/oasdiff/oasdiff/diff"
	"github.com/oasdiff/oasdiff/load"
)

// DefaultMaxBytes is the largest document Diff reads when Options.MaxBytes is
// zero.
const DefaultMaxBytes = 8 << 20

// ErrTooLarge is returned for a document above the size limit.
var ErrTooLarge = errors.New("openapi: document too large")

// Options tune Diff. The zero value is usable.
type Options struct {
	// OldName and NewName label the documents in locations ("old.yaml").
	OldName, NewName string
	// MaxBytes bounds each document; zero means DefaultMaxBytes.
	MaxBytes int
	// Warnings, when set, reports warning-level changes too (a deprecation,
	// a loosened constraint that may surprise a client). Errors always are.
	Warnings bool
}

// Level is how serious a change is: "error" breaks clients, "warning" may.
type Level string

// Levels.
const (
	Error   Level = "error"
	Warning Level = "warning"
	Info    Level = "info"
)

// Location is a place in a document.
type Location struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func (l Location) String() string {
	switch {
	case l.File == "" && l.Line == 0:
		return ""
	case l.Line == 0:
		return l.File
	default:
		return fmt.Sprintf("%s:%d:%d", l.File, l.Line, l.Column)
	}
}

// Change is one finding of the diff.
type Change struct {
	// Rule is oasdiff's rule id ("response-property-removed").
	Rule      string `json:"rule"`
	Level     Level  `json:"level"`
	Operation string `json:"operation,omitempty"`
	Path      string `json:"path,omitempty"`
	// Section is where in the document the change is ("paths", "components").
	Section string `json:"section,omitempty"`
	Text    string `json:"text"`
	// Old and New are where the change is in each document, when known.
	Old *Location `json:"old,omitempty"`
	New *Location `json:"new,omitempty"`
}

// Where is the most useful location of the change: in the new document, or
// in the old one for something removed.
func (c Change) Where() string {
	if c.New != nil && c.New.Line > 0 {
		return c.New.String()
	}
	if c.Old != nil {
		return c.Old.String()
	}
	return ""
}

// Report is the diff's verdict.
type Report struct {
	Old     string   `json:"old"`
	New     string   `json:"new"`
	Changes []Change `json:"changes"`
}

// Breaking reports whether any change is error-level.
func (r *Report) Breaking() bool {
	for _, c := range r.Changes {
		if c.Level == Error {
			return true
		}
	}
	return false
}

// Count returns the number of changes at level l.
func (r *Report) Count(l Level) int {
	n := 0
	for _, c := range r.Changes {
		if c.Level == l {
			n++
		}
	}
	return n
}

// Diff compares old to new and returns the changes oasdiff's
// backward-compatibility rules report: errors always, warnings when asked.
// A document that does not parse, or is not valid OpenAPI 3, is an error
// naming the document.
func Diff(oldDoc, newDoc []byte, opts Options) (*Report, error) {
	if opts.OldName == "" {
		opts.OldName = "old"
	}
	if opts.NewName == "" {
		opts.NewName = "new"
	}
	if opts.OldName == opts.NewName {
		opts.NewName += " (new)"
	}
	max := opts.MaxBytes
	if max <= 0 {
		max = DefaultMaxBytes
	}
	s1, err := loadSpec(oldDoc, opts.OldName, max)
	if err != nil {
		return nil, err
	}
	s2, err := loadSpec(newDoc, opts.NewName, max)
	if err != nil {
		return nil, err
	}
	d, sources, err := diff.GetWithOperationsSourcesMap(diff.NewConfig(), s1, s2)
	if err != nil {
		return nil, fmt.Errorf("openapi: diff %s and %s: %w", opts.OldName, opts.NewName, err)
	}
	level := checker.ERR
	if opts.Warnings {
		level = checker.WARN
	}
	changes := checker.CheckBackwardCompatibilityUntilLevel(checker.NewConfig(checker.GetAllChecks()), d, sources, level)
	l := checker.NewDefaultLocalizer()
	rep := &Report{Old: opts.OldName, New: opts.NewName, Changes: []Change{}}
	for _, c := range changes {
		section, _ := c.Subject()
		rep.Changes = append(rep.Changes, Change{
			Rule:      c.GetId(),
			Level:     levelOf(c.GetLevel()),
			Operation: c.GetOperation(),
			Path:      c.GetPath(),
			Section:   section,
			Text:      c.GetUncolorizedText(l),
			Old:       location(c.GetBaseSource()),
			New:       location(c.GetRevisionSource()),
		})
	}
	sort.SliceStable(rep.Changes, func(i, j int) bool {
		a, b := rep.Changes[i], rep.Changes[j]
		if a.Level != b.Level {
			return a.Level == Error
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		if a.Operation != b.Operation {
			return a.Operation < b.Operation
		}
		return a.Rule < b.Rule
	})
	return rep, nil
}

func loadSpec(data []byte, name string, max int) (*load.SpecInfo, error) {
	if len(data) > max {
		return nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, name, len(data), max)
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	loader.IncludeOrigin = true // line numbers for each change
	spec, err := load.NewSpecInfoFromData(loader, data, name)
	if err != nil {
		return nil, fmt.Errorf("openapi: %s: %w", name, err)
	}
	if spec.Spec == nil || spec.Spec.OpenAPI == "" {
		return nil, fmt.Errorf("openapi: %s: field \"openapi\" is required (an OpenAPI 3 document)", name)
	}
	if err := spec.Spec.Validate(loader.Context, openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("openapi: %s: not valid OpenAPI 3: %w", name, err)
	}
	return spec, nil
}

func levelOf(l checker.Level) Level {
	switch {
	case l >= checker.ERR:
		return Error
	case l >= checker.WARN:
		return Warning
	default:
		return Info
	}
}

func location(s *checker.Source) *Location {
	if s == nil || (s.File == "" && s.Line == 0) {
		return nil
	}
	return &Location{File: s.File, Line: s.Line, Column: s.Column}
}
