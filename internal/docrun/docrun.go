// Package docrun reads the shell commands of a docs page so that a test can
// run them as written: the fenced ```sh blocks, one command a line, with the
// little shell syntax the docs use (NAME=value before a command, export
// NAME=value, quotes, a trailing backslash to continue a line, # comments).
// Anything more (pipes, redirections, &&, $(...)) is refused, so a page
// cannot grow a command that the test silently misreads.
package docrun

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Command is one command line of a page.
type Command struct {
	// Line is the line of the page it starts on.
	Line int
	// Text is the line as written.
	Text string
	// Export is true for `export NAME=value`: Env is then all there is.
	Export bool
	// Env are the NAME=value assignments before the command, in order.
	Env [][2]string
	// Args are the command and its arguments.
	Args []string
}

var (
	shFence    = regexp.MustCompile("^(```+)\\s*(sh|bash|shell|console)\\b")
	assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
)

// Commands returns the commands of every ```sh block of a page.
func Commands(page []byte) ([]Command, error) {
	var out []Command
	sc := bufio.NewScanner(bytes.NewReader(page))
	fence := ""
	var pending strings.Builder
	start := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if fence == "" {
			if m := shFence.FindStringSubmatch(trimmed); m != nil {
				fence = m[1]
			}
			continue
		}
		if trimmed == fence {
			if pending.Len() > 0 {
				return nil, fmt.Errorf("line %d: the block ends inside a continued line", line)
			}
			fence = ""
			continue
		}
		if pending.Len() == 0 {
			start = line
		}
		if cont, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(trimmed)
		full := strings.TrimSpace(pending.String())
		pending.Reset()
		c, err := parse(full)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: %w", start, full, err)
		}
		if c == nil {
			continue
		}
		c.Line, c.Text = start, full
		out = append(out, *c)
	}
	return out, sc.Err()
}

// parse splits one command line into words.
func parse(line string) (*Command, error) {
	words, err := split(line)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, nil
	}
	c := &Command{}
	if words[0] == "export" {
		c.Export = true
		words = words[1:]
		if len(words) == 0 {
			return nil, fmt.Errorf("export names nothing")
		}
	}
	for len(words) > 0 && assignment.MatchString(words[0]) {
		name, value, _ := strings.Cut(words[0], "=")
		c.Env = append(c.Env, [2]string{name, value})
		words = words[1:]
	}
	if c.Export && len(words) > 0 {
		return nil, fmt.Errorf("export takes only NAME=value")
	}
	c.Args = words
	return c, nil
}

// split splits a line into words the way sh does for the simple lines the
// docs use, and refuses shell syntax it does not model.
func split(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '#' && !inWord:
			return words, nil // a comment runs to the end of the line
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unclosed quote")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("unclosed quote")
			}
			s := line[i+1 : i+1+j]
			if strings.ContainsAny(s, "$`\\") {
				return nil, fmt.Errorf("expansions inside double quotes are not supported")
			}
			cur.WriteString(s)
			i += j + 1
			inWord = true
		case strings.IndexByte("|&;<>()$`\\*?[", ch) >= 0:
			return nil, fmt.Errorf("the shell syntax %q is not supported by the docs' command runner", string(ch))
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
