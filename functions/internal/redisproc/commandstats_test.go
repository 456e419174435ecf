package redisproc

import (
	"strings"
	"testing"
)

func TestParseCommandStat(t *testing.T) {
	for _, tt := range []struct {
		v       string
		want    CommandStat
		wantErr string
	}{
		{"calls=3,usec=12,usec_per_call=4.00,rejected_calls=0,failed_calls=1", CommandStat{3, 12, 4}, ""},
		{"usec=5,calls=1", CommandStat{1, 5, 0}, ""},
		{"usec=12,usec_per_call=4.00", CommandStat{}, "no calls"},
		{"calls=x,usec=1", CommandStat{}, "bad commandstats"},
		{"calls=1,usec_per_call=fast", CommandStat{}, "bad commandstats"},
	} {
		got, err := ParseCommandStat(tt.v)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCommandStat(%q) = %+v, %v; want an error containing %q", tt.v, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseCommandStat(%q) = %+v, %v; want %+v", tt.v, got, err, tt.want)
		}
	}
}
