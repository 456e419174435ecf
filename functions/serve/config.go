package serve

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is the runtime's part of the environment.
type Config struct {
	// Port is the port Knative asks the container to listen on.
	Port int `envconfig:"PORT"`
	// ListenAddress, when set, wins over Port (knative/func's variable).
	ListenAddress string `envconfig:"LISTEN_ADDRESS"`
	// DrainTimeout bounds how long in-flight requests may run after SIGTERM.
	DrainTimeout time.Duration `envconfig:"DRAIN_TIMEOUT"`
	// BodyTimeout bounds how long a client may take to send a request body.
	BodyTimeout time.Duration `envconfig:"BODY_TIMEOUT"`
	// MetricsPort, when set, is where /metrics is served instead of on Port: a port
	// Knative does not route, that Prometheus reaches by the pod's address.
	MetricsPort int `envconfig:"METRICS_PORT"`
}

// DefaultConfig is the runtime's configuration with every variable unset.
func DefaultConfig() Config {
	return Config{Port: 8080, DrainTimeout: 30 * time.Second, BodyTimeout: 10 * time.Second}
}

// Addr is the address to listen on.
func (c Config) Addr() string {
	if c.ListenAddress != "" {
		return c.ListenAddress
	}
	return ":" + strconv.Itoa(c.Port)
}

// Check returns an error naming the first variable with a value that cannot work.
func (c Config) Check() error {
	switch {
	case c.ListenAddress == "" && (c.Port < 1 || c.Port > 65535):
		return fmt.Errorf("PORT=%d: must be between 1 and 65535", c.Port)
	case c.DrainTimeout <= 0:
		return fmt.Errorf("DRAIN_TIMEOUT=%s: must be positive", c.DrainTimeout)
	case c.BodyTimeout < time.Millisecond || c.BodyTimeout > 10*time.Minute:
		return fmt.Errorf("BODY_TIMEOUT=%s: must be between 1ms and 10m", c.BodyTimeout)
	case c.MetricsPort < 0 || c.MetricsPort > 65535 || c.MetricsPort != 0 && c.MetricsPort == c.Port && c.ListenAddress == "":
		return fmt.Errorf("METRICS_PORT=%d: must be between 1 and 65535 and not PORT", c.MetricsPort)
	}
	return nil
}

// MetricsAddr is the address to serve /metrics on when MetricsPort is set: the host
// of Addr (all interfaces, unless LISTEN_ADDRESS names one) and MetricsPort.
func (c Config) MetricsAddr() string {
	host, _, _ := net.SplitHostPort(c.Addr())
	return net.JoinHostPort(host, strconv.Itoa(c.MetricsPort))
}

// Checker is a configuration that can tell whether its values can work.
type Checker interface {
	Check() error
}

// Load returns defaults with the variables the environment sets laid over them,
// checked; the error is one line that starts with the variable at fault.
func Load[C Checker](defaults C) (C, error) {
	c := defaults
	err := envconfig.Process("", &c)
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		// envconfig's message is long; the short line starts with the variable's name.
		err = fmt.Errorf("%s=%q: not a valid %s", pe.KeyName, pe.Value, pe.TypeName)
	}
	if err == nil {
		err = c.Check()
	}
	if err != nil {
		var zero C
		return zero, err
	}
	return c, nil
}

// Configure returns a function's configuration for its Start: preset (a test's, the
// local stack's) checked, or without one Load(defaults). Each configuration keeps its
// defaults in one place, its DefaultConfig; the struct tags only name the variables.
// The error is the line the process prints before it stops: "configuration: " and the
// variable at fault.
func Configure[C Checker](preset *C, defaults C) (C, error) {
	var c C
	var err error
	if preset == nil {
		c, err = Load(defaults)
	} else {
		c, err = *preset, (*preset).Check()
	}
	if err != nil {
		var zero C
		return zero, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}
