// Package config loads and validates the YAML configuration shared by every
// payhook binary (docs/config.md; the rules in docs/interfaces.md). The whole file is checked before any
// binary starts; every problem is reported as one line naming the key.
//
// The files follow the steps of Load: schema.go is the file's shape (the
// types YAML decodes into), expand.go substitutes ${NAME} and refuses unknown
// keys, defaults.go fills what was left out, validate.go checks every key,
// and providers.go checks what only the linked providers know. nats.go and
// eventsigning.go hold the checks and helpers of those two sections.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a config problem: Key is the dotted path ("accounts[1].provider").
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Key + ": " + e.Msg
}

func errf(key, format string, args ...any) error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Load reads, expands and validates the file at path. getenv resolves ${NAME}
// (os.Getenv semantics, but a missing variable is an error).
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	return Parse(b, lookupEnv)
}

// Parse is Load on bytes.
func Parse(b []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, &Error{Msg: "not valid YAML: " + oneLine(err.Error())}
	}
	lines := map[string]int{}
	if err := expand(&root, reflect.TypeOf(Config{}), "", lookupEnv, lines); err != nil {
		return nil, err
	}
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, &Error{Msg: oneLine(err.Error())}
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	c.lines = lines
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var fieldRE = regexp.MustCompile(`line \d+: field (\S+) not found in type (?:\w+\.)*(\w+)`)

// yamlError turns yaml.v3's messages into one line naming the key. Unknown
// keys are normally caught by expand with their dotted path; one the walk
// did not see (reached through an alias) is named here by its leaf only,
// and without yaml.v3's line number, which counts lines of the re-encoded
// document rather than of the file as written.
func yamlError(err error) error {
	msg := oneLine(err.Error())
	if m := fieldRE.FindStringSubmatch(msg); m != nil {
		return &Error{Key: m[1], Msg: fmt.Sprintf("unknown key (in %s)", m[2])}
	}
	if strings.Contains(msg, "field ") && strings.Contains(msg, "not found") {
		return &Error{Msg: "unknown key: " + strings.TrimPrefix(msg, "yaml: unmarshal errors: ")}
	}
	return &Error{Msg: strings.TrimPrefix(msg, "yaml: unmarshal errors: ")}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
