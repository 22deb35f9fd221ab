package alerts

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// CheckSelector reports whether selector is a list of PromQL label
// matchers, without braces, that the rules can put in every vector
// selector: name op "value", comma-separated, op one of = != =~ !~, a
// regex that compiles (RE2, as in Prometheus). The metric name is the
// rules' own, and so is the closing brace: no trailing comma.
func CheckSelector(selector string) error {
	rest := strings.TrimSpace(selector)
	if rest == "" {
		return fmt.Errorf("empty selector: give label matchers such as %s", DefaultSelector)
	}
	for rest != "" {
		name, op, value, tail, err := nextMatcher(rest)
		if err != nil {
			return fmt.Errorf("selector %q: %w (want label matchers such as %s)", selector, err, DefaultSelector)
		}
		if name == "__name__" {
			return fmt.Errorf("selector %q: __name__ is set by each rule", selector)
		}
		if op == "=~" || op == "!~" {
			if _, err := regexp.Compile("^(?:" + value + ")$"); err != nil {
				return fmt.Errorf("selector %q: label %s: %w", selector, name, err)
			}
		}
		rest = strings.TrimSpace(tail)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return fmt.Errorf("selector %q: want a comma after %s%s%q, got %q", selector, name, op, value, rest)
		}
		rest = strings.TrimSpace(rest[1:])
		if rest == "" {
			return fmt.Errorf("selector %q ends with a comma: the rules add matchers after it", selector)
		}
	}
	return nil
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*`)

// nextMatcher reads one matcher at the start of s.
func nextMatcher(s string) (name, op, value, rest string, err error) {
	name = labelName.FindString(s)
	if name == "" {
		return "", "", "", "", fmt.Errorf("want a label name at %q", s)
	}
	s = strings.TrimSpace(s[len(name):])
	for _, o := range []string{"=~", "!~", "!=", "="} {
		if strings.HasPrefix(s, o) {
			op = o
			break
		}
	}
	if op == "" {
		return "", "", "", "", fmt.Errorf("want = != =~ or !~ after %s, got %q", name, s)
	}
	s = strings.TrimSpace(s[len(op):])
	value, rest, err = quoted(s)
	if err != nil {
		return "", "", "", "", fmt.Errorf("label %s: %w", name, err)
	}
	return name, op, value, rest, nil
}

// quoted reads a PromQL string literal ("...", '...' or `...`) at the
// start of s.
func quoted(s string) (value, rest string, err error) {
	if s == "" || !strings.ContainsRune("\"'`", rune(s[0])) {
		return "", "", fmt.Errorf("want a quoted value, got %q", s)
	}
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			lit := s[:i+1]
			if q == '\'' { // Go has no single-quoted strings: requote
				lit = `"` + strings.ReplaceAll(strings.ReplaceAll(lit[1:i], `\'`, `'`), `"`, `\"`) + `"`
			}
			v, err := strconv.Unquote(lit)
			if err != nil {
				return "", "", fmt.Errorf("bad string %s", s[:i+1])
			}
			return v, s[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("unterminated string %s", s)
}
