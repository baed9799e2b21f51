package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand walks the parsed document beside t, the Go type it decodes into.
// It replaces ${NAME} in scalar values (keys never), after parsing, so a
// secret containing YAML syntax can't change the document's structure, and
// it refuses a key t has no field for, naming the key's dotted path and its
// line in the file as written. The decoder's own KnownFields check stays
// behind it for what the walk does not see (keys reached through an alias).
func expand(n *yaml.Node, t reflect.Type, path string, lookupEnv func(string) (string, bool), lines map[string]int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := expand(c, t, path, lookupEnv, lines); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		return expandMapping(n, t, path, lookupEnv, lines)
	case yaml.SequenceNode:
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i, c := range n.Content {
			if err := expand(c, et, fmt.Sprintf("%s[%d]", path, i), lookupEnv, lines); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		return expandScalar(n, t, path, lookupEnv)
	}
	return nil
}

// expandMapping records each key's line, refuses a key struct t has no
// field for, and walks each value beside its field's (or map element's) type.
func expandMapping(n *yaml.Node, t reflect.Type, path string, lookupEnv func(string) (string, bool), lines map[string]int) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := n.Content[i]
		if kn.Tag == "!!merge" {
			continue // "<<: *anchor": the anchored mapping was walked where it is defined
		}
		p := kn.Value
		if path != "" {
			p = path + "." + kn.Value
		}
		lines[p] = kn.Line
		var vt reflect.Type
		switch {
		case t == nil:
		case t.Kind() == reflect.Struct && !isUnmarshaler(t):
			f, ok := fieldByKey(t, kn.Value)
			if !ok {
				return errf(p, "unknown key (line %d)", kn.Line)
			}
			vt = f
		case t.Kind() == reflect.Map:
			vt = t.Elem()
		}
		if err := expand(n.Content[i+1], vt, p, lookupEnv, lines); err != nil {
			return err
		}
	}
	return nil
}

// expandScalar replaces every ${NAME} in a scalar's value; a missing
// variable is an error naming the key.
func expandScalar(n *yaml.Node, t reflect.Type, path string, lookupEnv func(string) (string, bool)) error {
	if !strings.Contains(n.Value, "${") {
		return checkSelfDecoding(n, t, path)
	}
	var missing string
	var names []string
	v := envRE.ReplaceAllStringFunc(n.Value, func(m string) string {
		name := m[2 : len(m)-1]
		names = append(names, name)
		val, ok := lookupEnv(name)
		if !ok && missing == "" {
			missing = name
		}
		return val
	})
	if missing != "" {
		return errf(path, "environment variable %s is not set", missing)
	}
	n.Value = v
	if len(names) == 0 || n.Style&yaml.TaggedStyle != 0 {
		return nil // no ${NAME} after all, or the author's explicit tag decides
	}
	return retag(n, t, path, names)
}

// retag gives a substituted scalar the tag its field reads. A string field
// (or a type with its own UnmarshalYAML, like Duration, or a key outside
// the schema) gets !!str, so the value is taken literally whatever it looks
// like: "007" stays "007", "true" stays "true", "*x" and "a: #b" are not
// YAML. A number or bool field gets the value read as YAML reads a plain
// scalar of that type (3, 0.5, true); anything else there is an error that
// names the variables but, since a secret may have been put in the wrong
// place, not the value. An empty value in such a field is YAML's null,
// like "replicas:" with nothing after it: the key keeps its default.
func retag(n *yaml.Node, t reflect.Type, path string, names []string) error {
	var what string
	var tags []string // what the value may resolve to, besides null
	if t != nil && !isUnmarshaler(t) {
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			// Only !!int: yaml.v3 would truncate 1.5 to 1.
			what, tags = "an integer", []string{"!!int"}
		case reflect.Float32, reflect.Float64:
			what, tags = "a number", []string{"!!int", "!!float"}
		case reflect.Bool:
			what, tags = "true or false", []string{"!!bool"}
		}
	}
	if what == "" {
		n.Tag = "!!str"
		if t != nil && isUnmarshaler(t) && checkSelfDecoding(n, t, path) != nil {
			if t == reflect.TypeOf(Duration(0)) || t == durationType {
				what = "a duration (like 90s or 2h)"
			} else {
				what = "accepted here"
			}
			return errf(path, "environment variable %s: the value is not %s", strings.Join(names, ", "), what)
		}
		return nil
	}
	probe := yaml.Node{Kind: yaml.ScalarNode, Value: n.Value}
	tag := probe.ShortTag()
	if err := probe.Decode(reflect.New(t).Interface()); err != nil || (tag != "!!null" && !slices.Contains(tags, tag)) {
		return errf(path, "environment variable %s: the value is not %s", strings.Join(names, ", "), what)
	}
	n.Tag, n.Style = tag, 0
	if n.Tag == "!!null" {
		n.Value = "null"
	}
	return nil
}

// checkSelfDecoding decodes a scalar bound for a type with its own
// UnmarshalYAML (Duration), so that its error names the key: the decoder
// reports it without one.
func checkSelfDecoding(n *yaml.Node, t reflect.Type, path string) error {
	if t == nil || !isUnmarshaler(t) || n.ShortTag() == "!!null" {
		return nil
	}
	if t == durationType {
		// yaml.v3 decodes a time.Duration itself, but its error names no key.
		if _, err := time.ParseDuration(n.Value); err != nil || n.ShortTag() != "!!str" {
			return errf(path, "not a duration (like 90s or 2h): %q", n.Value)
		}
		return nil
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return errf(path, "%s", oneLine(err.Error()))
	}
	return nil
}

var (
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	// durationType is time.Duration, which yaml.v3 reads from a Go
	// duration string itself (providers.Account.MaxAge): treated here like
	// a type with its own UnmarshalYAML.
	durationType = reflect.TypeOf(time.Duration(0))
)

// isUnmarshaler reports whether t (or *t) decodes itself from a node.
func isUnmarshaler(t reflect.Type) bool {
	return t == durationType || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)
}

// fieldByKey returns the type of struct t's field that yaml.v3 fills from
// key: the name in the field's yaml tag, or the lower-cased field name when
// the tag gives none, looking into ",inline" structs.
func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Map {
				return ft.Elem(), true
			}
			if got, ok := fieldByKey(ft, key); ok {
				return got, true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}
