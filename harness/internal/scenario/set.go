package scenario

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// step is one element of a --set path: a mapping key or a list index.
type step struct {
	key   string
	index int // -1 for a key
}

// splitPath splits "load.stages[0].duration" into key, index, key steps.
// It does not validate; parseSetPath does.
func splitPath(path string) []step {
	steps, _ := parseSetPath(path)
	return steps
}

func parseSetPath(path string) ([]step, error) {
	var steps []step
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" && (len(steps) == 0 || rest == "") {
			return nil, fmt.Errorf("empty field name in path %q", path)
		}
		if key != "" {
			steps = append(steps, step{key: key, index: -1})
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(idx)
			if !ok || err != nil || i < 0 {
				return nil, fmt.Errorf("bad index [%s in path %q; write [0], [1], ...", rest, path)
			}
			steps = append(steps, step{index: i})
			if after == "" {
				break
			}
			if !strings.HasPrefix(after, "[") {
				return nil, fmt.Errorf("unexpected %q after ] in path %q", after, path)
			}
			rest = after[1:]
		}
	}
	return steps, nil
}

// applySet applies one PATH=VALUE override to the document tree. VALUE is
// parsed as YAML, so lists and maps may be given in flow style. A missing
// mapping key is created; a list index may be one past the end to append.
func (p *parser) applySet(root *yaml.Node, set string) error {
	path, value, ok := strings.Cut(set, "=")
	if !ok || path == "" {
		return fmt.Errorf("want PATH=VALUE, such as load.stages[0].duration=3s")
	}
	steps, err := parseSetPath(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return fmt.Errorf("value %q is not YAML: %v", value, err)
	}
	val := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	if len(doc.Content) > 0 {
		val = doc.Content[0]
	}
	p.markOrigin(val, "--set "+set)
	n := root
	for i, st := range steps {
		last := i == len(steps)-1
		where := pathString(steps[:i+1])
		if st.index >= 0 {
			if n.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s: %s is not a list", where, pathString(steps[:i]))
			}
			switch {
			case st.index < len(n.Content):
			case st.index == len(n.Content):
				n.Content = append(n.Content, emptyFor(steps, i+1))
			default:
				return fmt.Errorf("%s: index %d out of range (the list has %d items)", where, st.index, len(n.Content))
			}
			if last {
				n.Content[st.index] = val
				return nil
			}
			n = n.Content[st.index]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: %s is not a mapping", where, pathString(steps[:i]))
		}
		var child *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == st.key {
				if last {
					n.Content[j+1] = val
					return nil
				}
				child = n.Content[j+1]
			}
		}
		if child == nil {
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: st.key}
			p.origin[key] = "--set " + set
			child = val
			if !last {
				child = emptyFor(steps, i+1)
			}
			n.Content = append(n.Content, key, child)
			if last {
				return nil
			}
		}
		if child.Tag == "!!null" && !last {
			*child = *emptyFor(steps, i+1)
		}
		n = child
	}
	return nil
}

// emptyFor makes the container that steps[i] needs: a list for an index,
// a mapping for a key.
func emptyFor(steps []step, i int) *yaml.Node {
	if i < len(steps) && steps[i].index >= 0 {
		return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	}
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
}

func (p *parser) markOrigin(n *yaml.Node, origin string) {
	p.origin[n] = origin
	for _, c := range n.Content {
		p.markOrigin(c, origin)
	}
}

func pathString(steps []step) string {
	var b strings.Builder
	for _, s := range steps {
		if s.index >= 0 {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

func sortStrings(s []string) { sort.Strings(s) }
