package contract

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Pact's date, time and datetime matchers and generators take Java
// DateTimeFormatter patterns ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX"). A pattern is
// compiled into tokens: each is checked by a regular expression and its
// numbers against their ranges (a 13th month or a 30th of February does
// not match), and formatted for generators.

type dtToken struct {
	letter  byte // 0 for a literal
	count   int
	literal string
	opt     int // +1 opens an optional section, -1 closes one
}

type dtPattern struct {
	tokens []dtToken
	re     *regexp.Regexp
	groups []int // token index of each capture group
}

var dtCache sync.Map

const maxPatternLen = 256

func compileDateTime(p string) (*dtPattern, error) {
	if v, ok := dtCache.Load(p); ok {
		return v.(*dtPattern), nil
	}
	if len(p) > maxPatternLen {
		return nil, fmt.Errorf("date/time format longer than %d bytes", maxPatternLen)
	}
	toks, err := tokenizeDateTime(p)
	if err != nil {
		return nil, err
	}
	dp := &dtPattern{tokens: toks}
	var b strings.Builder
	b.WriteString("^")
	depth := 0
	for i, t := range toks {
		switch {
		case t.opt > 0:
			b.WriteString("(?:")
			depth++
			continue
		case t.opt < 0:
			if depth == 0 {
				return nil, fmt.Errorf("format %q: ] without [", p)
			}
			b.WriteString(")?")
			depth--
			continue
		case t.letter == 0:
			b.WriteString(regexp.QuoteMeta(t.literal))
			continue
		}
		re, err := tokenRegex(t)
		if err != nil {
			return nil, fmt.Errorf("format %q: %w", p, err)
		}
		b.WriteString("(" + re + ")")
		dp.groups = append(dp.groups, i)
	}
	for ; depth > 0; depth-- {
		b.WriteString(")?")
	}
	b.WriteString("$")
	dp.re, err = regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("format %q: %w", p, err)
	}
	dtCache.Store(p, dp)
	return dp, nil
}

func tokenizeDateTime(p string) ([]dtToken, error) {
	var out []dtToken
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			j := i + 1
			var lit strings.Builder
			for {
				if j >= len(p) {
					return nil, fmt.Errorf("format %q: unclosed quote", p)
				}
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						lit.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				lit.WriteByte(p[j])
				j++
			}
			if j == i+1 {
				out = append(out, dtToken{literal: "'"})
			} else {
				out = append(out, dtToken{literal: lit.String()})
			}
			i = j + 1
		case c == '[':
			out = append(out, dtToken{opt: 1})
			i++
		case c == ']':
			out = append(out, dtToken{opt: -1})
			i++
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(p) && p[j] == c {
				j++
			}
			out = append(out, dtToken{letter: c, count: j - i})
			i = j
		default:
			out = append(out, dtToken{literal: string(c)})
			i++
		}
	}
	return out, nil
}

var (
	monthsShort = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
	monthsLong  = "January|February|March|April|May|June|July|August|September|October|November|December"
	daysShort   = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"
	daysLong    = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
)

func digits(count, max int) string {
	if count <= 1 {
		return fmt.Sprintf(`\d{1,%d}`, max)
	}
	return fmt.Sprintf(`\d{%d}`, count)
}

func tokenRegex(t dtToken) (string, error) {
	switch t.letter {
	case 'y', 'u', 'Y':
		if t.count == 2 {
			return `\d{2}`, nil
		}
		return `[+-]?\d{4,9}`, nil
	case 'M', 'L':
		switch {
		case t.count >= 4:
			return monthsLong, nil
		case t.count == 3:
			return monthsShort, nil
		}
		return digits(t.count, 2), nil
	case 'd', 'H', 'h', 'k', 'K', 'm', 's', 'w':
		return digits(t.count, 2), nil
	case 'D':
		return digits(t.count, 3), nil
	case 'S':
		return fmt.Sprintf(`\d{%d}`, t.count), nil
	case 'n':
		return `\d{1,9}`, nil
	case 'a':
		return `AM|PM|am|pm`, nil
	case 'E':
		if t.count >= 4 {
			return daysLong, nil
		}
		return daysShort, nil
	case 'e', 'c':
		if t.count <= 2 {
			return `\d{1,2}`, nil
		}
		if t.count == 3 {
			return daysShort, nil
		}
		return daysLong, nil
	case 'G':
		return `AD|BC|Anno Domini|Before Christ|A|B`, nil
	case 'Q', 'q':
		return `Q?[1-4]|[1-4](st|nd|rd|th) quarter`, nil
	case 'X':
		switch t.count {
		case 1:
			return `Z|[+-]\d{2}(?:\d{2})?`, nil
		case 2, 4:
			return `Z|[+-]\d{4}`, nil
		default:
			return `Z|[+-]\d{2}:\d{2}`, nil
		}
	case 'x':
		switch t.count {
		case 1:
			return `[+-]\d{2}(?:\d{2})?`, nil
		case 2, 4:
			return `[+-]\d{4}`, nil
		default:
			return `[+-]\d{2}:\d{2}`, nil
		}
	case 'Z':
		switch {
		case t.count <= 3:
			return `[+-]\d{4}`, nil
		case t.count == 4:
			return `GMT|GMT[+-]\d{1,2}:\d{2}|[+-]\d{2}:\d{2}`, nil
		default:
			return `Z|[+-]\d{2}:\d{2}`, nil
		}
	case 'z', 'v':
		return `[A-Za-z][A-Za-z0-9_+\-/]*`, nil
	case 'V', 'O':
		return `[A-Za-z][A-Za-z0-9_+\-/:]*`, nil
	}
	return "", fmt.Errorf("pattern letter %q is not supported", string(t.letter))
}

// checkDateTime reports whether s has the format (a Java pattern), or the
// ISO form of kind when format is empty.
func checkDateTime(kind, format, s string) error {
	if format == "" {
		layouts := map[string][]string{
			"date":     {"2006-01-02"},
			"time":     {"15:04:05", "15:04:05.999999999", "15:04:05Z07:00", "15:04:05.999999999Z07:00"},
			"datetime": {time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999999"},
		}[kind]
		for _, l := range layouts {
			if _, err := time.Parse(l, s); err == nil {
				return nil
			}
		}
		return fmt.Errorf("%q is not an ISO %s", s, kind)
	}
	dp, err := compileDateTime(format)
	if err != nil {
		return err
	}
	m := dp.re.FindStringSubmatch(s)
	if m == nil {
		return fmt.Errorf("%q does not have the %s format %q", s, kind, format)
	}
	year, month, day := -1, -1, -1
	for gi, ti := range dp.groups {
		v := m[gi+1]
		if v == "" {
			continue
		}
		t := dp.tokens[ti]
		n, numErr := strconv.Atoi(strings.TrimPrefix(v, "+"))
		lo, hi := -1, -1
		switch t.letter {
		case 'M', 'L':
			if numErr == nil {
				lo, hi, month = 1, 12, n
			} else {
				month = monthIndex(v)
			}
		case 'd':
			lo, hi, day = 1, 31, n
		case 'D':
			lo, hi = 1, 366
		case 'H':
			lo, hi = 0, 23
		case 'k':
			lo, hi = 1, 24
		case 'K':
			lo, hi = 0, 11
		case 'h':
			lo, hi = 1, 12
		case 'm', 's':
			lo, hi = 0, 59
		case 'y', 'u', 'Y':
			if t.count == 2 {
				year = 2000 + n
			} else {
				year = n
			}
		}
		if lo >= 0 && (numErr != nil || n < lo || n > hi) {
			return fmt.Errorf("%q does not have the %s format %q: %s out of range", s, kind, format, v)
		}
	}
	if month > 0 && day > 0 {
		y := year
		if y < 0 {
			y = 2000 // a leap year: 29 February passes without a year
		}
		if time.Date(y, time.Month(month), day, 0, 0, 0, 0, time.UTC).Day() != day {
			return fmt.Errorf("%q does not have the %s format %q: no such day", s, kind, format)
		}
	}
	return nil
}

func monthIndex(v string) int {
	for i, m := range strings.Split(monthsLong, "|") {
		if strings.EqualFold(v, m) || strings.EqualFold(v, m[:3]) {
			return i + 1
		}
	}
	return -1
}

// formatDateTime formats t with a Java pattern (ISO forms when empty).
func formatDateTime(kind, format string, t time.Time) (string, error) {
	if format == "" {
		switch kind {
		case "date":
			return t.Format("2006-01-02"), nil
		case "time":
			return t.Format("15:04:05"), nil
		default:
			return t.Format("2006-01-02T15:04:05.000Z07:00"), nil
		}
	}
	dp, err := compileDateTime(format)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	pad := func(n, w int) string {
		s := strconv.Itoa(n)
		for len(s) < w {
			s = "0" + s
		}
		return s
	}
	for _, tk := range dp.tokens {
		if tk.opt != 0 {
			continue
		}
		if tk.letter == 0 {
			b.WriteString(tk.literal)
			continue
		}
		c := tk.count
		switch tk.letter {
		case 'y', 'u', 'Y':
			if c == 2 {
				b.WriteString(pad(t.Year()%100, 2))
			} else {
				b.WriteString(pad(t.Year(), c))
			}
		case 'M', 'L':
			switch {
			case c >= 4:
				b.WriteString(t.Month().String())
			case c == 3:
				b.WriteString(t.Month().String()[:3])
			default:
				b.WriteString(pad(int(t.Month()), c))
			}
		case 'd':
			b.WriteString(pad(t.Day(), c))
		case 'D':
			b.WriteString(pad(t.YearDay(), c))
		case 'H':
			b.WriteString(pad(t.Hour(), c))
		case 'k':
			h := t.Hour()
			if h == 0 {
				h = 24
			}
			b.WriteString(pad(h, c))
		case 'K':
			b.WriteString(pad(t.Hour()%12, c))
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			b.WriteString(pad(h, c))
		case 'm':
			b.WriteString(pad(t.Minute(), c))
		case 's':
			b.WriteString(pad(t.Second(), c))
		case 'S':
			ns := pad(t.Nanosecond(), 9)
			if c <= 9 {
				b.WriteString(ns[:c])
			} else {
				b.WriteString(ns + strings.Repeat("0", c-9))
			}
		case 'n':
			b.WriteString(strconv.Itoa(t.Nanosecond()))
		case 'a':
			b.WriteString(t.Format("PM"))
		case 'E', 'e', 'c':
			if c >= 4 {
				b.WriteString(t.Weekday().String())
			} else if tk.letter == 'E' || c == 3 {
				b.WriteString(t.Weekday().String()[:3])
			} else {
				b.WriteString(strconv.Itoa(int(t.Weekday())))
			}
		case 'G':
			b.WriteString("AD")
		case 'Q', 'q':
			b.WriteString(strconv.Itoa((int(t.Month())-1)/3 + 1))
		case 'w':
			_, w := t.ISOWeek()
			b.WriteString(pad(w, c))
		case 'X':
			switch c {
			case 1:
				b.WriteString(t.Format("Z07"))
			case 2, 4:
				b.WriteString(t.Format("Z0700"))
			default:
				b.WriteString(t.Format("Z07:00"))
			}
		case 'x':
			switch c {
			case 1:
				b.WriteString(t.Format("-07"))
			case 2, 4:
				b.WriteString(t.Format("-0700"))
			default:
				b.WriteString(t.Format("-07:00"))
			}
		case 'Z':
			if c <= 3 {
				b.WriteString(t.Format("-0700"))
			} else {
				b.WriteString(t.Format("Z07:00"))
			}
		case 'z', 'v', 'V', 'O':
			b.WriteString(t.Format("MST"))
		default:
			return "", fmt.Errorf("pattern letter %q is not supported", string(tk.letter))
		}
	}
	return b.String(), nil
}
