package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a string with a unit ("10m",
// "1h30m"). A bare number such as 600 is rejected because its unit would be a
// guess; the single exception is 0, which needs no unit.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration without zero trailing units: "1m",
// "24h", "1h30m", "1m30s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// errDurationSyntax is the message for a malformed duration. It never echoes the
// input.
const errDurationSyntax = "must be a duration with a unit, e.g. 30s, 10m or 1h30m"

// parseDuration parses s, rejecting bare numbers other than "0".
func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r == 'µ' }) < 0 {
		return 0, fmt.Errorf("%s", errDurationSyntax)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s", errDurationSyntax)
	}
	return Duration(d), nil
}

// UnmarshalYAML decodes a duration string. Errors are *yaml.TypeError so that
// the decoder keeps going and reports every problem in the document at once.
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", value.Line, errDurationSyntax)}}
	}
	v, err := parseDuration(value.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", value.Line, err)}}
	}
	*d = v
	return nil
}

// MarshalYAML encodes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
