// Package redisenv is the Redis part of both functions' environment: where Redis is
// (one address, or the Sentinels that name the master), its password and the size of
// the connection pool, checked the same way for both.
package redisenv

import (
	"fmt"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Redis is embedded in each function's Config; its defaults are the function's.
type Redis struct {
	RedisAddr           string   `envconfig:"REDIS_ADDR"`
	RedisPassword       string   `envconfig:"REDIS_PASSWORD"`
	RedisSentinelAddrs  []string `envconfig:"REDIS_SENTINEL_ADDRS"`
	RedisSentinelMaster string   `envconfig:"REDIS_SENTINEL_MASTER"`
	RedisPoolSize       int      `envconfig:"REDIS_POOL_SIZE"`
}

// Check returns an error naming the first variable whose value cannot work.
func (r Redis) Check() error {
	switch {
	case r.RedisAddr == "" && len(r.RedisSentinelAddrs) == 0:
		return fmt.Errorf("REDIS_ADDR: must not be empty")
	case len(r.RedisSentinelAddrs) > 0 && r.RedisSentinelMaster == "":
		return fmt.Errorf("REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINEL_ADDRS")
	case r.RedisPoolSize < 1 || r.RedisPoolSize > 10000:
		return fmt.Errorf("REDIS_POOL_SIZE=%d: must be between 1 and 10000", r.RedisPoolSize)
	}
	return nil
}

// Options are the store's connection options for these settings.
func (r Redis) Options() store.Options {
	return store.Options{
		Addr:           r.RedisAddr,
		Password:       r.RedisPassword,
		SentinelAddrs:  r.RedisSentinelAddrs,
		SentinelMaster: r.RedisSentinelMaster,
		PoolSize:       r.RedisPoolSize,
	}
}
