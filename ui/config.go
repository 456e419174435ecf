package ui

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is the UI service's environment; the Knative manifests use exactly these
// names.
type Config struct {
	// Port is the port Knative asks the container to listen on.
	Port int `envconfig:"PORT" default:"8080"`
	// ListenAddress, when set, wins over Port (knative/func's variable); the local
	// stack uses it to stay on loopback.
	ListenAddress string `envconfig:"LISTEN_ADDRESS"`
	// WriteURL is the write function's base URL (its Knative route).
	WriteURL string `envconfig:"WRITE_URL" default:"http://cqrs-write.default.svc.cluster.local"`
	// ReadURL is the read function's base URL (its Knative route).
	ReadURL string `envconfig:"READ_URL" default:"http://cqrs-read.default.svc.cluster.local"`
	// ProxyTimeout bounds the wait for a function's answer; it is generous because a
	// function scaled to zero needs a cold start first.
	ProxyTimeout time.Duration `envconfig:"PROXY_TIMEOUT" default:"15s"`
	// DrainTimeout bounds how long in-flight requests may run after SIGTERM.
	DrainTimeout time.Duration `envconfig:"DRAIN_TIMEOUT" default:"10s"`
}

// Addr is the address to listen on.
func (c Config) Addr() string {
	if c.ListenAddress != "" {
		return c.ListenAddress
	}
	return ":" + strconv.Itoa(c.Port)
}

// LoadConfig reads Config from the environment and checks it; the error is one line
// that starts with the variable at fault.
func LoadConfig() (Config, error) {
	var c Config
	err := envconfig.Process("", &c)
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return c, fmt.Errorf("%s=%q: not a valid %s", pe.KeyName, pe.Value, pe.TypeName)
	}
	if err != nil {
		return c, err
	}
	return c, c.Check()
}

// Check returns an error naming the first variable with a value that cannot work.
func (c Config) Check() error {
	switch {
	case c.ListenAddress == "" && (c.Port < 1 || c.Port > 65535):
		return fmt.Errorf("PORT=%d: must be between 1 and 65535", c.Port)
	case c.ProxyTimeout <= 0 || c.ProxyTimeout > 5*time.Minute:
		return fmt.Errorf("PROXY_TIMEOUT=%s: must be between 1ms and 5m", c.ProxyTimeout)
	case c.DrainTimeout <= 0:
		return fmt.Errorf("DRAIN_TIMEOUT=%s: must be positive", c.DrainTimeout)
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
