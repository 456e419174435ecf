package read

import (
	"fmt"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Fallback policies for reads the replica cannot serve in time.
const (
	FallbackMaster = "master"
	FallbackNone   = "none"
)

// Config is the read function's environment; the Knative manifests use exactly these
// names.
type Config struct {
	RedisAddr           string        `envconfig:"REDIS_ADDR" default:"cqrs-redis-replicas:6379"`
	RedisMasterAddr     string        `envconfig:"REDIS_MASTER_ADDR" default:"cqrs-redis-master:6379"`
	RedisPassword       string        `envconfig:"REDIS_PASSWORD"`
	RedisSentinelAddrs  []string      `envconfig:"REDIS_SENTINEL_ADDRS"`
	RedisSentinelMaster string        `envconfig:"REDIS_SENTINEL_MASTER" default:"mymaster"`
	RedisPoolSize       int           `envconfig:"REDIS_POOL_SIZE" default:"64"`
	RecordTypes         []string      `envconfig:"RECORD_TYPES" default:"bp,cmt,rvw"`
	ReadMaxWait         time.Duration `envconfig:"READ_MAX_WAIT" default:"500ms"`
	ReadFallback        string        `envconfig:"READ_FALLBACK" default:"master"`
}

// DefaultConfig is the configuration with every variable unset.
func DefaultConfig() Config {
	return Config{
		RedisAddr:           "cqrs-redis-replicas:6379",
		RedisMasterAddr:     "cqrs-redis-master:6379",
		RedisSentinelMaster: "mymaster",
		RedisPoolSize:       64,
		RecordTypes:         []string{"bp", "cmt", "rvw"},
		ReadMaxWait:         500 * time.Millisecond,
		ReadFallback:        FallbackMaster,
	}
}

// LoadConfig reads Config from the environment and checks it.
func LoadConfig() (Config, error) {
	c, err := serve.Configure[Config](nil)
	if err != nil {
		return Config{}, err
	}
	return *c, nil
}

// Check returns an error naming the first variable with a value that cannot work.
func (c Config) Check() error {
	if err := c.replica().Check(); err != nil {
		return err
	}
	switch {
	case c.ReadMaxWait < 0 || c.ReadMaxWait > 30*time.Second:
		return fmt.Errorf("READ_MAX_WAIT=%s: must be between 0 and 30s", c.ReadMaxWait)
	case c.ReadFallback != FallbackMaster && c.ReadFallback != FallbackNone:
		return fmt.Errorf("READ_FALLBACK=%q: must be %q or %q", c.ReadFallback, FallbackMaster, FallbackNone)
	case c.ReadFallback == FallbackMaster && c.RedisMasterAddr == "" && len(c.RedisSentinelAddrs) == 0:
		return fmt.Errorf("REDIS_MASTER_ADDR: must be set when READ_FALLBACK=master")
	}
	if err := record.CheckTypes(c.RecordTypes); err != nil {
		return fmt.Errorf("RECORD_TYPES: %w", err)
	}
	return nil
}

// replica is how the read function reaches the replicas.
func (c Config) replica() store.Options {
	return store.Options{
		Addr:           c.RedisAddr,
		Password:       c.RedisPassword,
		SentinelAddrs:  c.RedisSentinelAddrs,
		SentinelMaster: c.RedisSentinelMaster,
		Replicas:       true,
		PoolSize:       c.RedisPoolSize,
	}
}

// master is how the read function reaches the master for its fallback.
func (c Config) master() store.Options {
	o := c.replica()
	o.Addr, o.Replicas = c.RedisMasterAddr, false
	return o
}
