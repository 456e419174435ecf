package ui

import (
	"fmt"
	"net/url"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
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
}

// DefaultConfig is the configuration with every variable unset.
func DefaultConfig() Config {
	return Config{
		WriteURL:     "http://cqrs-write.default.svc.cluster.local",
		ReadURL:      "http://cqrs-read.default.svc.cluster.local",
		ProxyTimeout: 15 * time.Second,
	}
}

// LoadConfig reads Config from the environment and checks it; the error is one line
// that starts with the variable at fault.
func LoadConfig() (Config, error) {
	c, err := serve.Configure(nil, DefaultConfig())
	if err != nil {
		return Config{}, err
	}
	return *c, nil
}

// Check returns an error naming the first variable with a value that cannot work.
func (c Config) Check() error {
	if c.ProxyTimeout <= 0 || c.ProxyTimeout > 5*time.Minute {
		return fmt.Errorf("PROXY_TIMEOUT=%s: must be between 1ms and 5m", c.ProxyTimeout)
	}
	if _, err := baseURL("WRITE_URL", c.WriteURL); err != nil {
		return err
	}
	_, err := baseURL("READ_URL", c.ReadURL)
	return err
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
