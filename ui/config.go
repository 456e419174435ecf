package ui

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config is the UI service's environment; the Knative manifests use exactly these
// names. The runtime reads PORT, LISTEN_ADDRESS and DRAIN_TIMEOUT (serve.Config).
type Config struct {
	// WriteURL is the write function's base URL (its Knative route).
	WriteURL string `envconfig:"WRITE_URL"`
	// ReadURL is the read function's base URL (its Knative route).
	ReadURL string `envconfig:"READ_URL"`
	// ProxyTimeout bounds the wait for a function's answer; it is generous because a
	// function scaled to zero needs a cold start first.
	ProxyTimeout time.Duration `envconfig:"PROXY_TIMEOUT"`
	// RecordTypes are the types the page offers, in this order; the functions must
	// be given the same list. Same format and check as theirs.
	RecordTypes []string `envconfig:"RECORD_TYPES"`
	// RecordTypeLabels names types for people: "bp=Blog post,cmt=Comment". A type
	// without a label here keeps its default label (DefaultTypeLabels) or, failing
	// that, shows its name.
	RecordTypeLabels string `envconfig:"RECORD_TYPE_LABELS"`
	// AllowedHosts are the host names (any port) the UI answers to; "*" is any. Unset,
	// they are localhost, 127.0.0.1 and [::1], or any host on Knative, whose ingress
	// routes by Host.
	AllowedHosts []string `envconfig:"UI_ALLOWED_HOSTS"`
	// KService is set by Knative to the Service's name.
	KService string `envconfig:"K_SERVICE"`
}

// DefaultTypeLabels are the labels of the default types, as the original page had
// them.
var DefaultTypeLabels = map[string]string{"bp": "Blog post", "cmt": "Comment", "rvw": "Review"}

// Bounds of the type configuration.
const (
	maxTypeName   = 32
	maxTypeLabel  = 64
	typeNameChars = "abcdefghijklmnopqrstuvwxyz0123456789-_"
)

// DefaultConfig is the configuration with every variable unset.
func DefaultConfig() Config {
	return Config{
		WriteURL:     "http://cqrs-write.default.svc.cluster.local",
		ReadURL:      "http://cqrs-read.default.svc.cluster.local",
		ProxyTimeout: 15 * time.Second,
		RecordTypes:  []string{"bp", "cmt", "rvw"},
	}
}

// Check returns an error naming the first variable with a value that cannot work.
func (c Config) Check() error {
	if c.ProxyTimeout < time.Millisecond || c.ProxyTimeout > 5*time.Minute {
		return fmt.Errorf("PROXY_TIMEOUT=%s: must be between 1ms and 5m", c.ProxyTimeout)
	}
	if _, err := baseURL("WRITE_URL", c.WriteURL); err != nil {
		return err
	}
	if _, err := baseURL("READ_URL", c.ReadURL); err != nil {
		return err
	}
	if err := checkTypes(c.RecordTypes); err != nil {
		return fmt.Errorf("RECORD_TYPES: %w", err)
	}
	labels, err := parseLabels(c.RecordTypeLabels)
	if err != nil {
		return fmt.Errorf("RECORD_TYPE_LABELS=%q: %w", c.RecordTypeLabels, err)
	}
	for _, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ ") || strings.Contains(strings.Trim(h, "[]"), "]") {
			return fmt.Errorf("UI_ALLOWED_HOSTS: %q is not a host name such as ui.example.com, [::1] or *", h)
		}
	}
	for name := range labels {
		if !slices.Contains(c.RecordTypes, name) {
			return fmt.Errorf("RECORD_TYPE_LABELS=%q: %s is not one of RECORD_TYPES (%s)", c.RecordTypeLabels, name, strings.Join(c.RecordTypes, ","))
		}
	}
	return nil
}

// checkTypes is the functions' check of RECORD_TYPES (the UI imports no domain
// package): at least one name, each 1 to 32 of a-z, 0-9, - and _, none twice.
func checkTypes(types []string) error {
	if len(types) == 0 {
		return fmt.Errorf("must name at least one type")
	}
	for i, t := range types {
		if err := checkTypeName(t); err != nil {
			return err
		}
		if slices.Contains(types[:i], t) {
			return fmt.Errorf("%q is given twice", t)
		}
	}
	return nil
}

// checkTypeName says why name is not a record type name, if it is not.
func checkTypeName(name string) error {
	if name == "" || len(name) > maxTypeName || strings.Trim(name, typeNameChars) != "" {
		return fmt.Errorf("%q is not a type name (a-z, 0-9, - and _, at most %d)", name, maxTypeName)
	}
	return nil
}

// parseLabels reads RECORD_TYPE_LABELS: comma-separated name=label pairs; a label is
// 1 to 64 characters after trimming, without control characters, and cannot hold a
// comma (an equals sign is fine).
func parseLabels(value string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(value) == "" {
		return m, nil
	}
	for _, pair := range strings.Split(value, ",") {
		name, label, ok := strings.Cut(pair, "=")
		name, label = strings.TrimSpace(name), strings.TrimSpace(label)
		if !ok {
			return nil, fmt.Errorf("%q is not name=label, such as bp=Blog post", pair)
		}
		if err := checkTypeName(name); err != nil {
			return nil, err
		}
		switch {
		case label == "" || utf8.RuneCountInString(label) > maxTypeLabel || !utf8.ValidString(label):
			return nil, fmt.Errorf("the label of %s must be 1 to %d characters", name, maxTypeLabel)
		case strings.ContainsFunc(label, unicode.IsControl):
			return nil, fmt.Errorf("the label of %s holds a control character", name)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("%s is labelled twice", name)
		}
		m[name] = label
	}
	return m, nil
}

// Type is one record type as the page offers it.
type Type struct {
	Name  string `json:"name"`
	Label string `json:"label"`
}

// Types are the configured types in order, each with its label: the configured one,
// else the default one, else the name itself. c must have passed Check.
func (c Config) Types() []Type {
	labels, _ := parseLabels(c.RecordTypeLabels)
	out := make([]Type, 0, len(c.RecordTypes))
	for _, name := range c.RecordTypes {
		// Labels are never empty (parseLabels refuses an empty one).
		out = append(out, Type{Name: name, Label: cmp.Or(labels[name], DefaultTypeLabels[name], name)})
	}
	return out
}

// hosts are the host names the UI answers to, lower-cased and IPv6 addresses without
// brackets, as allowedHost compares them.
func (c Config) hosts() []string {
	hosts := c.AllowedHosts
	switch {
	case len(hosts) > 0:
	case c.KService != "":
		hosts = []string{"*"}
	default:
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = strings.ToLower(strings.Trim(h, "[]"))
	}
	return out
}

// baseURL parses a function's base URL; only absolute http(s) URLs without query or
// fragment make sense as a proxy target.
func baseURL(name, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s=%q: must be an absolute http or https URL without query, such as http://cqrs-write.default.svc.cluster.local", name, raw)
	}
	return u, nil
}

// NewWithConfig returns a UI that uses cfg instead of the environment.
func NewWithConfig(cfg Config) *UI {
	u := New()
	u.preset = &cfg
	return u
}
