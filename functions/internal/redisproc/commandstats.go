package redisproc

import (
	"fmt"
	"strconv"
	"strings"
)

// CommandStat is one command's counters in INFO commandstats.
type CommandStat struct {
	Calls       int64
	Usec        int64   // time in Redis, in all, in microseconds
	UsecPerCall float64 // as Redis rounds it
}

// ParseCommandStat reads the value of an INFO commandstats line, the part after
// "cmdstat_<command>:", such as "calls=3,usec=12,usec_per_call=4.00,...". Fields it
// does not need are passed over; one without calls is an error.
func ParseCommandStat(v string) (CommandStat, error) {
	var c CommandStat
	found := false
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "calls":
			c.Calls, err = strconv.ParseInt(val, 10, 64)
			found = true
		case "usec":
			c.Usec, err = strconv.ParseInt(val, 10, 64)
		case "usec_per_call":
			c.UsecPerCall, err = strconv.ParseFloat(val, 64)
		}
		if err != nil {
			return CommandStat{}, fmt.Errorf("bad commandstats %q: %w", v, err)
		}
	}
	if !found {
		return CommandStat{}, fmt.Errorf("no calls in commandstats %q", v)
	}
	return c, nil
}
