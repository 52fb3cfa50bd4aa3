package dlq

import (
	"slices"
	"sort"
	"time"
)

// DefaultIncidentGap is how far apart two letters of one cause may first
// fail and still belong to one incident, when Incidents is given no gap.
const DefaultIncidentGap = 10 * time.Minute

// Incident is a run of letters with one cause whose first failures follow
// each other closely: a storm of a thousand letters when a dependency went
// down reads as one incident with one playbook.
type Incident struct {
	Cause Cause `json:"class"`
	// First and Last are the earliest and latest first failure of its letters.
	First     time.Time `json:"first_seen"`
	Last      time.Time `json:"last_seen"`
	Count     int       `json:"count"`
	Open      int       `json:"open"`
	Consumers []string  `json:"consumers"`
	Topics    []string  `json:"topics"`
	// Letters are the ids, oldest first.
	Letters  []string `json:"letters"`
	Rule     string   `json:"rule"`
	Playbook string   `json:"playbook"`
}

// Incidents groups letters by cause and first failure: a letter joins the
// latest incident of its cause when it first failed within gap of that
// incident's last letter (gap ≤ 0 means DefaultIncidentGap). Incidents are
// ordered by when they began. The playbook is filled in for the incident's
// first letter.
func Incidents(ls []*Letter, c *Classifier, gap time.Duration) []Incident {
	if c == nil {
		c = DefaultClassifier
	}
	if gap <= 0 {
		gap = DefaultIncidentGap
	}
	sorted := slices.Clone(ls)
	sort.SliceStable(sorted, func(i, j int) bool { return firstSeen(sorted[i]).Before(firstSeen(sorted[j])) })
	var out []Incident
	latest := map[Cause]int{} // cause -> index in out
	for _, l := range sorted {
		d := c.ClassifyLetter(l)
		t := firstSeen(l)
		i, ok := latest[d.Cause]
		if !ok || t.Sub(out[i].Last) > gap {
			out = append(out, Incident{Cause: d.Cause, First: t, Rule: d.Rule, Playbook: fillPlaybook(d.Playbook, l)})
			i = len(out) - 1
			latest[d.Cause] = i
		}
		in := &out[i]
		in.Last = t
		in.Count++
		if l.Open() {
			in.Open++
		}
		in.Letters = append(in.Letters, l.ID)
		if !slices.Contains(in.Consumers, l.Consumer) {
			in.Consumers = append(in.Consumers, l.Consumer)
		}
		if !slices.Contains(in.Topics, l.Topic) {
			in.Topics = append(in.Topics, l.Topic)
		}
	}
	for i := range out {
		sort.Strings(out[i].Consumers)
		sort.Strings(out[i].Topics)
	}
	return out
}

func firstSeen(l *Letter) time.Time {
	if l.FirstFailure.IsZero() {
		return l.LastFailure
	}
	return l.FirstFailure
}
