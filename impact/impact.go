package impact

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/schema"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

// Input is a proposed schema change and what is known of its readers.
type Input struct {
	Subject string
	// New is the proposed schema.
	New *schema.Parsed
	// Earlier are the subject's registered versions, oldest first; the
	// latest is the one consumers read today. At least one is required.
	Earlier []schema.Version
	// Level is the subject's compatibility level (schema.Backward when empty).
	Level schema.Level
	// System, when set, names the declared consumers of the subject (and
	// their owners and contract pairs).
	System *system.System
	// Graph, when set, adds consumers observed reading the subject's topics.
	Graph *topology.Graph
	// Pacts are the consumers' message pacts: what each consumer reads.
	Pacts []*contract.Pact
}

// FieldChange is one field the change removes or alters, as a data path
// ("/customer/email").
type FieldChange struct {
	Path string `json:"path"`
	// Kind is "removed" or "altered".
	Kind string `json:"kind"`
	// Old and New describe the field's type before and after ("string",
	// "integer"); New is empty for a removed field.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// Changes.
const (
	Removed = "removed"
	Altered = "altered"
)

// Consumer is one reader of the subject and what the change does to it.
type Consumer struct {
	Service string `json:"service"`
	Owner   string `json:"owner,omitempty"`
	// Source says how it is known: "declared", "observed", or both.
	Source []string `json:"source"`
	// Contract is where its reads come from: the pact's consumer and
	// provider; empty when no message pact covers it.
	Contract string `json:"contract,omitempty"`
	// Reads are the field paths its pact reads; nil when unknown.
	Reads []string `json:"reads"`
	// Breaks are the changed fields it reads, each with what breaks.
	Breaks []Break `json:"breaks"`
}

// Break is a changed field a consumer reads, and what happens to it.
type Break struct {
	Field  FieldChange `json:"field"`
	Reads  string      `json:"reads"`
	Effect string      `json:"effect"`
}

// Verdict is the impact report.
type Verdict struct {
	Subject string `json:"subject"`
	// Compatible and Violations are the subject's blanket verdict: the
	// compatibility level against the earlier versions.
	Level      schema.Level       `json:"level"`
	Compatible bool               `json:"compatible"`
	Violations []schema.Violation `json:"violations"`
	// Changes are the fields the new version removes or alters.
	Changes []FieldChange `json:"changes"`
	// Consumers are the known readers, each with what breaks.
	Consumers []Consumer `json:"consumers"`
	// SafeForKnownConsumers: no consumer whose reads are known reads a
	// changed field. It holds even where Compatible does not.
	SafeForKnownConsumers bool `json:"safe_for_known_consumers"`
	// Unverified are consumers with no message pact: their reads are
	// unknown, so the verdict above does not cover them.
	Unverified []string `json:"unverified"`
	// Migration is the sequence of steps that makes the change safe.
	Migration []string `json:"migration"`
}

// Affected returns the consumers the change breaks.
func (v *Verdict) Affected() []Consumer {
	var out []Consumer
	for _, c := range v.Consumers {
		if len(c.Breaks) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// Analyze reports which known consumers of in.Subject read the fields the
// proposed schema removes or alters, beside the subject's compatibility
// verdict. Fields are compared for JSON Schema and Avro; for Protobuf only
// the compatibility findings name changed fields.
func Analyze(in Input) (*Verdict, error) {
	switch {
	case in.Subject == "":
		return nil, errors.New("impact: subject is required")
	case in.New == nil:
		return nil, errors.New("impact: the new schema is required")
	case len(in.Earlier) == 0:
		return nil, fmt.Errorf("impact: subject %s: no registered version to compare with", in.Subject)
	}
	level := in.Level
	if level == "" {
		level = schema.Backward
	}
	res := schema.Check(level, in.New, in.Earlier)
	v := &Verdict{Subject: in.Subject, Level: level, Compatible: res.Compatible(), Violations: res.Violations,
		Changes: []FieldChange{}, Consumers: []Consumer{}, Unverified: []string{}, Migration: []string{}}
	if v.Violations == nil {
		v.Violations = []schema.Violation{}
	}
	old := in.Earlier[len(in.Earlier)-1].Schema
	changes, oldFields, err := diffFields(old, in.New)
	if err != nil {
		return nil, fmt.Errorf("impact: subject %s: %w", in.Subject, err)
	}
	// A finding of the compatibility engine on a field of the registered
	// version that the walk did not see as changed is an alteration too (a
	// narrowed enum; any Protobuf field, which the walk does not compare).
	// A finding on a field the registered version lacks (a new required
	// field) touches no field a consumer reads today.
	for _, viol := range res.Violations {
		p := dataPath(in.New.Type(), viol.Path)
		if p == "" || slices.ContainsFunc(changes, func(c FieldChange) bool { return c.Path == p }) {
			continue
		}
		if _, had := oldFields[p]; !had && in.New.Type() != schema.Protobuf {
			continue
		}
		changes = append(changes, FieldChange{Path: p, Kind: Altered, Old: viol.Rule})
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	v.Changes = append(v.Changes, changes...)

	for _, c := range consumers(in) {
		for _, ch := range changes {
			for _, r := range c.Reads {
				if overlaps(r, ch.Path) {
					c.Breaks = append(c.Breaks, Break{Field: ch, Reads: r, Effect: effect(ch, r)})
					break
				}
			}
		}
		if c.Breaks == nil {
			c.Breaks = []Break{}
		}
		if c.Reads == nil {
			v.Unverified = append(v.Unverified, c.Service)
		}
		v.Consumers = append(v.Consumers, c)
	}
	v.SafeForKnownConsumers = len(v.Affected()) == 0
	v.Migration = migration(v)
	return v, nil
}

// consumers gathers the readers of the subject: declared consumes of it (or
// of a topic carrying it) in the system, observed consumers of those topics
// in the graph, and their reads from the pacts.
func consumers(in Input) []Consumer {
	byName := map[string]*Consumer{}
	var order []string
	add := func(name, source string) *Consumer {
		c, ok := byName[name]
		if !ok {
			c = &Consumer{Service: name}
			byName[name] = c
			order = append(order, name)
		}
		if !slices.Contains(c.Source, source) {
			c.Source = append(c.Source, source)
		}
		return c
	}
	topics := map[string]bool{}
	pairs := map[string]*system.ContractPair{}
	if s := in.System; s != nil {
		for _, t := range s.Topics {
			if t.Subject == in.Subject {
				topics[t.Name] = true
			}
		}
		s.Integrations(func(svc *system.Service, it *system.Integration) {
			if it.Kind != system.Async || it.Direction != system.Consume {
				return
			}
			if it.Subject != in.Subject && !topics[it.Topic] {
				return
			}
			topics[it.Topic] = true
			c := add(svc.Name, "declared")
			c.Owner = svc.Owner
			if it.Contract != nil {
				pairs[svc.Name] = it.Contract
			}
		})
	}
	if g := in.Graph; g != nil {
		for _, e := range g.Edges() {
			if e.Kind == system.Async && topics[e.From] && e.Observed.Calls > 0 {
				c := add(e.To, "observed")
				if c.Owner == "" && in.System != nil {
					if svc := in.System.Service(e.To); svc != nil {
						c.Owner = svc.Owner
					}
				}
			}
		}
	}
	out := make([]Consumer, 0, len(order))
	for _, name := range order {
		c := byName[name]
		pair := pairs[name]
		for _, p := range in.Pacts {
			if p.Consumer != name || (pair != nil && p.Provider != pair.Provider) {
				continue
			}
			reads := messageReads(p, topics, in.Subject)
			if reads == nil {
				continue
			}
			c.Contract = p.Consumer + " -> " + p.Provider
			for _, r := range reads {
				if !slices.Contains(c.Reads, r) {
					c.Reads = append(c.Reads, r)
				}
			}
		}
		sort.Strings(c.Reads)
		out = append(out, *c)
	}
	return out
}

// messageReads returns the field paths the pact's message interactions
// read. An interaction whose metadata names a topic or subject counts only
// when it names one of the subject's; one naming neither counts. Nil when
// the pact has no such interaction.
func messageReads(p *contract.Pact, topics map[string]bool, subject string) []string {
	var reads []string
	found := false
	for _, it := range p.Interactions {
		if it.Message == nil {
			continue
		}
		if t, ok := it.Message.Metadata["topic"].(string); ok && !topics[t] {
			continue
		}
		if s, ok := it.Message.Metadata["subject"].(string); ok && s != subject {
			continue
		}
		found = true
		var doc any
		if json.Unmarshal(it.Message.Contents.Content, &doc) != nil {
			continue
		}
		leaves(doc, "", func(p string) {
			if !slices.Contains(reads, p) {
				reads = append(reads, p)
			}
		})
	}
	if found && reads == nil {
		reads = []string{}
	}
	return reads
}

// leaves calls fn with the path of every leaf of a JSON document; array
// elements share their array's path.
func leaves(v any, path string, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && path != "" {
			fn(path)
		}
		for k, e := range x {
			leaves(e, path+"/"+escape(k), fn)
		}
	case []any:
		if len(x) == 0 && path != "" {
			fn(path)
		}
		for _, e := range x {
			leaves(e, path, fn)
		}
	default:
		if path != "" {
			fn(path)
		}
	}
}

func escape(k string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
}

// overlaps reports whether a read of path r touches changed path c: the
// same field, a field inside it, or the object holding it.
func overlaps(r, c string) bool {
	return r == c || strings.HasPrefix(r, c+"/") || strings.HasPrefix(c, r+"/")
}

func effect(ch FieldChange, read string) string {
	switch ch.Kind {
	case Removed:
		if read != ch.Path {
			return fmt.Sprintf("reads %s inside %s, which the new version removes: the value is missing (decoding fails or yields an empty value)", read, ch.Path)
		}
		return fmt.Sprintf("reads %s, which the new version removes: the value is missing (decoding fails or yields an empty value)", read)
	default:
		if ch.New != "" {
			return fmt.Sprintf("reads %s as %s; the new version makes it %s: decoding fails or misreads it", read, ch.Old, ch.New)
		}
		return fmt.Sprintf("reads %s, which the new version alters (%s)", read, ch.Old)
	}
}

// migration writes the steps that make the change safe for its readers.
func migration(v *Verdict) []string {
	var steps []string
	affected := v.Affected()
	if len(affected) == 0 {
		if len(v.Changes) == 0 {
			steps = append(steps, "No field is removed or altered: register the new version.")
		} else if !v.Compatible {
			steps = append(steps, fmt.Sprintf("No known consumer reads the changed fields, but %s refuses the change: register it after setting the subject's level for this one change (or use a new subject), then restore the level.", v.Level))
		} else {
			steps = append(steps, "No known consumer reads the changed fields: register the new version.")
		}
		if len(v.Unverified) > 0 {
			steps = append(steps, fmt.Sprintf("First confirm with %s, which have no message pact: publish their pacts (handoff contract publish) so the next report covers them.", strings.Join(v.Unverified, ", ")))
		}
		return steps
	}
	var names []string
	for _, c := range affected {
		n := c.Service
		if c.Owner != "" {
			n += " (" + c.Owner + ")"
		}
		names = append(names, n)
	}
	for _, ch := range v.Changes {
		var readers []string
		for _, c := range affected {
			if slices.ContainsFunc(c.Breaks, func(b Break) bool { return b.Field.Path == ch.Path }) {
				readers = append(readers, c.Service)
			}
		}
		if len(readers) == 0 {
			continue
		}
		switch ch.Kind {
		case Removed:
			steps = append(steps, fmt.Sprintf("Keep %s in the new version (optional, with a default) instead of removing it now; %s still %s it.", ch.Path, strings.Join(readers, ", "), verb(len(readers), "reads", "read")))
		default:
			steps = append(steps, fmt.Sprintf("Add a new field beside %s with the new type (%s) and a default, and have the producer write both; leave %s as it is (read by %s).", ch.Path, ch.New, ch.Path, strings.Join(readers, ", ")))
		}
	}
	steps = append(steps,
		"Register that version: every field a consumer reads is still there, as it was.",
		fmt.Sprintf("Move %s off the old field(s): change the handlers, publish their new message pacts (handoff contract publish), deploy them (handoff contract can-i-deploy).", strings.Join(names, ", ")),
		fmt.Sprintf("Run handoff schema impact %s again with the final schema: once it reports safe for known consumers, drop the old field(s).", v.Subject))
	return steps
}

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
