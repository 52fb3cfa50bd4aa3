package check

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes the report as JUnit XML, one test case per checkpoint
// (classname handoff.check.<system>): a failing checkpoint's failure lists
// its problems with their owners; a skipped one says why.
func (r *Report) WriteJUnit(w io.Writer) error {
	suite := junitSuite{Name: "handoff check " + r.System}
	for _, res := range r.Results {
		c := junitCase{Name: res.ID, ClassName: "handoff.check." + r.System, SystemOut: res.Title + ": " + res.Note}
		switch res.Status {
		case Fail:
			var b strings.Builder
			for _, p := range res.Problems {
				fmt.Fprintf(&b, "[%s] %s: %s", p.Owner, p.Subject, p.Message)
				if p.Line > 0 {
					fmt.Fprintf(&b, " (handoff.yaml:%d)", p.Line)
				}
				b.WriteByte('\n')
			}
			c.Failure = &junitFailure{Type: res.ID, Text: b.String(),
				Message: fmt.Sprintf("%d problem(s); owners: %s", len(res.Problems), strings.Join(res.Owners, ", "))}
			suite.Failures++
		case Skip:
			c.Skipped = &junitSkipped{Message: res.Note}
			suite.Skipped++
		}
		suite.Cases = append(suite.Cases, c)
		suite.Tests++
	}
	doc := junitSuites{Name: "handoff check", Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
