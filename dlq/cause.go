package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/handoffhq/handoff"
)

// Cause is a dead letter's root cause: what went wrong, as opposed to the
// Class, which says where in the runtime it was given up. Each cause has a
// playbook of next steps.
type Cause string

// Root causes. A user rule may name a cause of its own, with a playbook.
const (
	CauseSchema         Cause = "schema-mismatch" // the data does not fit the schema or type its consumer expects
	CauseDecoding       Cause = "decoding"        // poison message: bytes that cannot be decoded, or that crash the handler
	CauseTimeout        Cause = "timeout-network" // a call or I/O timed out, or the network dropped it
	CauseDependency     Cause = "dependency-down" // something the handler needs refused or is unavailable
	CauseBusinessRule   Cause = "business-rule"   // the handler refused the message on purpose
	CausePublishRefused Cause = "publish-refused" // the broker refused a message for good
	CauseUnknown        Cause = "unknown"         // no rule matched
)

// Causes lists the built-in causes in the order they are documented.
func Causes() []Cause {
	return []Cause{CauseSchema, CauseDecoding, CauseTimeout, CauseDependency, CauseBusinessRule, CausePublishRefused, CauseUnknown}
}

// Rule assigns a cause. A rule sets exactly one way to match:
//
//   - Is, a sentinel: the error wraps it (errors.Is). On a stored letter,
//     whose error values are gone, it matches when an element of the error
//     chain is the sentinel's own text, as Chain records a wrapped sentinel.
//   - As, a test of the error value (an error type, a method such as
//     Timeout). It matches live errors; a stored letter has only text, and
//     keeps such a cause only when its chain was made by Classifier.Chain
//     (as the consumer runtime makes it).
//   - Class, a runtime class (ClassSchema, ClassDecode, ...).
//   - Pattern, a regular expression over each element of the error chain.
//
// Rules of the first three kinds are tried before any pattern: types and
// sentinels first, then patterns; within each kind, user rules before the
// built-in ones, in the order given.
type Rule struct {
	Name    string
	Cause   Cause
	Is      error
	As      func(error) bool
	Class   string
	Pattern *regexp.Regexp
	// Playbook is the text for a cause of the rule's own; a built-in cause
	// keeps its playbook unless this is set.
	Playbook string
}

func (r Rule) strong() bool { return r.Is != nil || r.As != nil || r.Class != "" }

// Diagnosis is the cause a classifier found for a letter or an error, the
// rule that found it, and what to do.
type Diagnosis struct {
	Cause    Cause  `json:"class"`
	Rule     string `json:"rule"`
	Playbook string `json:"playbook"`
}

// Classifier assigns root causes by rules. The zero value is not usable;
// NewClassifier makes one with the built-in rules after the user's.
type Classifier struct {
	strong, patterns []Rule
	fallback         []Rule
	playbooks        map[Cause]string
}

// NewClassifier returns a classifier whose rules are user's, then the
// built-in ones. A rule must have a name, a cause, and exactly one of Is,
// As, Class and Pattern; a cause that is not built in needs a Playbook.
func NewClassifier(user ...Rule) (*Classifier, error) {
	c := &Classifier{playbooks: map[Cause]string{}}
	for k, v := range playbooks {
		c.playbooks[k] = v
	}
	for i, r := range user {
		n := 0
		for _, set := range []bool{r.Is != nil, r.As != nil, r.Class != "", r.Pattern != nil} {
			if set {
				n++
			}
		}
		switch {
		case r.Name == "":
			return nil, fmt.Errorf("dlq: rule %d: name is required", i)
		case r.Cause == "":
			return nil, fmt.Errorf("dlq: rule %q: cause is required", r.Name)
		case n != 1:
			return nil, fmt.Errorf("dlq: rule %q: exactly one of is, as, class and pattern must be set (%d are)", r.Name, n)
		case r.Playbook == "" && c.playbooks[r.Cause] == "":
			return nil, fmt.Errorf("dlq: rule %q: cause %q is not built in (%s), so it needs a playbook", r.Name, r.Cause, causeNames())
		}
		if r.Playbook != "" {
			c.playbooks[r.Cause] = r.Playbook
		}
		c.add(r)
	}
	for _, r := range builtinRules {
		c.add(r)
	}
	c.fallback = fallbackRules
	return c, nil
}

func causeNames() string {
	var s []string
	for _, c := range Causes() {
		s = append(s, string(c))
	}
	return strings.Join(s, ", ")
}

func (c *Classifier) add(r Rule) {
	if r.strong() {
		c.strong = append(c.strong, r)
	} else {
		c.patterns = append(c.patterns, r)
	}
}

// DefaultClassifier has only the built-in rules.
var DefaultClassifier = mustClassifier()

func mustClassifier() *Classifier {
	c, err := NewClassifier()
	if err != nil {
		panic(err)
	}
	return c
}

// causeNote starts the element of a stored error chain that records a
// cause found from the error's values (see Classifier.Chain).
const causeNote = "dlq cause: "

// Chain returns the error chain to store for a letter dead-lettered with err
// under the runtime class: Chain(err), and, when c finds err's cause by a
// rule that sees error values only (an As rule: an error type, a Timeout
// method), one more element recording that cause, "dlq cause: CAUSE (rule
// NAME)", so that the stored letter keeps the cause its text alone would
// not give. The consumer runtime stores its letters' chains this way.
func (c *Classifier) Chain(err error, class string) []string {
	chain := Chain(err)
	if c == nil {
		c = DefaultClassifier
	}
	for _, r := range c.strong {
		if r.As == nil || err == nil || !r.As(err) {
			if r.Is != nil && errors.Is(err, r.Is) || r.Class != "" && r.Class == class {
				return chain // a rule the stored text reproduces comes first
			}
			continue
		}
		return append(chain, fmt.Sprintf("%s%s (rule %s)", causeNote, r.Cause, r.Name))
	}
	return chain
}

// Classify returns the cause of err, from a handler or a publish, given the
// runtime class it was dead-lettered under (may be empty).
func (c *Classifier) Classify(err error, class string) Diagnosis {
	return c.classify(err, class, Chain(err))
}

// ClassifyLetter returns the cause of a stored letter, from its runtime
// class and its error chain.
func (c *Classifier) ClassifyLetter(l *Letter) Diagnosis {
	return c.classify(nil, l.Class, l.Errors)
}

func (c *Classifier) classify(err error, class string, chain []string) Diagnosis {
	if c == nil {
		c = DefaultClassifier
	}
	if err == nil {
		for _, msg := range chain {
			if rest, ok := strings.CutPrefix(msg, causeNote); ok {
				cause, rule, _ := strings.Cut(rest, " (rule ")
				return c.diagnosis(Rule{Cause: Cause(cause), Name: strings.TrimSuffix(rule, ")")})
			}
		}
	}
	for _, r := range c.strong {
		var ok bool
		switch {
		case r.Is != nil:
			ok = err != nil && errors.Is(err, r.Is) || err == nil && slices.Contains(chain, r.Is.Error())
		case r.As != nil:
			ok = err != nil && r.As(err)
		case r.Class != "":
			ok = class == r.Class
		}
		if ok {
			return c.diagnosis(r)
		}
	}
	for _, r := range c.patterns {
		for _, msg := range chain {
			if r.Pattern.MatchString(msg) {
				return c.diagnosis(r)
			}
		}
	}
	for _, r := range c.fallback {
		if class == r.Class {
			return c.diagnosis(r)
		}
	}
	return Diagnosis{Cause: CauseUnknown, Rule: "no rule matched", Playbook: c.playbooks[CauseUnknown]}
}

func (c *Classifier) diagnosis(r Rule) Diagnosis {
	return Diagnosis{Cause: r.Cause, Rule: r.Name, Playbook: c.playbooks[r.Cause]}
}

// Playbook returns the playbook of a cause for letter l, with l's id,
// consumer and topic in its commands; an unknown cause gets the unknown one.
func (c *Classifier) Playbook(cause Cause, l *Letter) string {
	if c == nil {
		c = DefaultClassifier
	}
	p, ok := c.playbooks[cause]
	if !ok {
		p = c.playbooks[CauseUnknown]
	}
	return fillPlaybook(p, l)
}

// Diagnose is ClassifyLetter with the playbook filled in for l.
func (c *Classifier) Diagnose(l *Letter) Diagnosis {
	d := c.ClassifyLetter(l)
	d.Playbook = fillPlaybook(d.Playbook, l)
	return d
}

func fillPlaybook(p string, l *Letter) string {
	if l == nil {
		return p
	}
	typ := ""
	if l.Message != nil {
		typ = l.Message.Type
	}
	return strings.NewReplacer("{id}", l.ID, "{consumer}", l.Consumer, "{topic}", l.Topic, "{type}", typ).Replace(p)
}

// ruleJSON is a user rule as ParseRules reads it.
type ruleJSON struct {
	Name     string `json:"name"`
	Cause    string `json:"class"`
	Class    string `json:"runtime_class"`
	Pattern  string `json:"pattern"`
	Playbook string `json:"playbook"`
}

// ParseRules reads user rules from JSON: an array of objects with name,
// class (the cause), one of pattern (a regular expression over the error
// chain) and runtime_class, and playbook (required for a class that is not
// built in). Types and sentinels are Go values: pass them to NewClassifier.
func ParseRules(r io.Reader) ([]Rule, error) {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	var in []ruleJSON
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("dlq: rules: %w", err)
	}
	out := make([]Rule, 0, len(in))
	for i, j := range in {
		r := Rule{Name: j.Name, Cause: Cause(j.Cause), Class: j.Class, Playbook: j.Playbook}
		if r.Name == "" {
			r.Name = fmt.Sprintf("rule %d", i)
		}
		if j.Pattern != "" {
			re, err := regexp.Compile(j.Pattern)
			if err != nil {
				return nil, fmt.Errorf("dlq: rules[%d] %q: pattern: %w", i, r.Name, err)
			}
			r.Pattern = re
		}
		out = append(out, r)
	}
	return out, nil
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isSyntaxError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se)
}

func isTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

func isDNSNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func re(s string) *regexp.Regexp { return regexp.MustCompile("(?i)" + s) }

// builtinRules: sentinels and types, then runtime classes that name a cause
// for certain, then patterns.
var builtinRules = []Rule{
	{Name: "context.DeadlineExceeded", Cause: CauseTimeout, Is: context.DeadlineExceeded},
	{Name: "os.ErrDeadlineExceeded", Cause: CauseTimeout, Is: os.ErrDeadlineExceeded},
	{Name: "net.Error timeout", Cause: CauseTimeout, As: isNetTimeout},
	{Name: "syscall.ECONNRESET", Cause: CauseTimeout, Is: syscall.ECONNRESET},
	{Name: "syscall.ECONNREFUSED", Cause: CauseDependency, Is: syscall.ECONNREFUSED},
	{Name: "net.DNSError not found", Cause: CauseDependency, As: isDNSNotFound},
	{Name: "json.UnmarshalTypeError", Cause: CauseSchema, As: isTypeError},
	{Name: "json.SyntaxError", Cause: CauseDecoding, As: isSyntaxError},
	{Name: "handoff.ErrInvalid", Cause: CauseDecoding, Is: handoff.ErrInvalid},
	{Name: "class schema", Cause: CauseSchema, Class: ClassSchema},
	{Name: "class unknown-type", Cause: CauseSchema, Class: ClassUnknownType},
	{Name: "class decode", Cause: CauseDecoding, Class: ClassDecode},
	{Name: "class invalid", Cause: CauseDecoding, Class: ClassInvalid},
	{Name: "class too-large", Cause: CauseDecoding, Class: ClassTooLarge},
	{Name: "class panic", Cause: CauseDecoding, Class: ClassPanic},
	{Name: "class publish", Cause: CausePublishRefused, Class: ClassPublish},
	{Name: "pattern timeout", Cause: CauseTimeout, Pattern: re(`time(d)? ?out|deadline exceeded|connection reset|broken pipe|network is unreachable|no route to host`)},
	{Name: "pattern dependency down", Cause: CauseDependency, Pattern: re(`connection refused|service unavailable|\b50[23]\b|bad gateway|breaker: open|circuit (breaker )?(is )?open|bulkhead: full|no such host|too many connections|unavailable`)},
	{Name: "pattern schema", Cause: CauseSchema, Pattern: re(`schema|unknown field|missing (required )?(field|property)|cannot unmarshal .* into|incompatible|unknown (message|event) type`)},
	{Name: "pattern decoding", Cause: CauseDecoding, Pattern: re(`invalid character|unexpected end of (json )?input|cannot (decode|parse)|malformed|illegal base64|invalid utf-?8|unexpected eof`)},
	{Name: "pattern publish refused", Cause: CausePublishRefused, Pattern: re(`publish.*(refused|rejected|denied)|maximum payload|permissions violation|no responders|nack`)},
	{Name: "pattern business rule", Cause: CauseBusinessRule, Pattern: re(`insufficient|not allowed|forbidden|invalid state|already (exists|cancel+ed|paid|shipped)|out of stock|limit exceeded|declined|rejected`)},
}

// fallbackRules apply when nothing else matched: a handler that returned
// handoff.Permanent with no telling text refused the message on purpose.
var fallbackRules = []Rule{
	{Name: "class permanent", Cause: CauseBusinessRule, Class: ClassPermanent},
}

var playbooks = map[Cause]string{
	CauseSchema: `The data does not fit the schema or type its consumer expects: a producer changed the event, or the consumer lags a version.
  1. See the data and the error:         handoff dlq show {id}
  2. Find what the change broke:        handoff schema impact SUBJECT NEW-SCHEMA-FILE
  3. Fix the producer (or deploy the consumer that reads the new version); a single letter can be corrected by hand:
                                         handoff dlq edit {id} --data FILE
  4. Send the storm back once fixed:     handoff dlq replay --all --consumer {consumer} --class schema --broker URL`,
	CauseDecoding: `Poison message: bytes that cannot be decoded (or that crash the handler). Replaying it unchanged fails again.
  1. See the raw data:                   handoff dlq show {id} --json
  2. Correct it, or drop it:             handoff dlq edit {id} --data FILE   |   handoff dlq purge --consumer {consumer} --class decode --yes
  3. Replay the corrected letter:        handoff dlq replay {id} --broker URL
  4. Find the producer that wrote it from the message's source and type ({type}), and add validation there.`,
	CauseTimeout: `A call or I/O timed out, or the network dropped it: transient. The message is probably good.
  1. See which call timed out:           handoff dlq show {id}
  2. Check that dependency's latency and the handler's per-try timeout (handoff topology show: the chain it sits on).
  3. When calls succeed again, replay:   handoff dlq replay --all --consumer {consumer} --state open --broker URL
  4. If it recurs, raise the retry count or back-off of {consumer} rather than letting messages die.`,
	CauseDependency: `A dependency refused or was unavailable (connection refused, 503, breaker open): the message is good, the dependency was down.
  1. Find the dependency in the error:   handoff dlq show {id}
  2. Check it is back (its health endpoint; handoff topology show for who depends on it).
  3. Replay everything it failed:        handoff dlq replay --all --consumer {consumer} --state open --broker URL`,
	CauseBusinessRule: `The handler refused the message on purpose (handoff.Permanent: a rule of the domain). Replaying it unchanged fails again.
  1. Read the rule that refused it:      handoff dlq show {id}
  2. Decide with the owner of {consumer}: correct the data (handoff dlq edit {id} --data FILE, then handoff dlq replay {id} --broker URL),
     or compensate and purge:            handoff dlq purge --consumer {consumer} --class permanent --yes`,
	CausePublishRefused: `The broker refused the message for good (too large, no permission, no such stream); the relay holds the key's later messages until it is resolved.
  1. See the broker's answer:            handoff dlq show {id}
  2. Fix the broker side (stream or subject for topic {topic}, permissions, max payload) or the message.
  3. Replay to release the key:          handoff dlq replay {id} --broker URL   (or purge it: handoff dlq purge --consumer relay --topic {topic} --yes)`,
	CauseUnknown: `No rule recognised this failure.
  1. Read the error chain and data:      handoff dlq show {id}
  2. Teach the classifier: add a rule (name, class, pattern) to the rules file given with --rules, so the next storm is named.
  3. Replay once fixed:                  handoff dlq replay {id} --broker URL`,
}
