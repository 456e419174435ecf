package read

import (
	"errors"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// TestDoorsAgree: the same read sent as the query string of GET /records and as the
// data of a query event is the same validated Query, and a refusal names the same
// field (data.<field> for the event): neither door re-encodes what the other decodes.
func TestDoorsAgree(t *testing.T) {
	fn := parser(t)
	for _, tt := range []struct {
		raw, data, wantField string
	}{
		{"", `{}`, ""},
		{"type=bp&q=Hello+WORLD&limit=5&minSeq=3", `{"type":"bp","q":"Hello WORLD","limit":5,"minSeq":3}`, ""},
		{"limit=101", `{"limit":101}`, "limit"},
		{"limit=0", `{"limit":0}`, "limit"},
		{"cursor=x", `{"cursor":"x"}`, "cursor"},
		{"type=poem", `{"type":"poem"}`, "type"},
		{"q=%21%21", `{"q":"!!"}`, "q"},
		{"token=nonsense", `{"token":"nonsense"}`, "token"},
	} {
		in, errURL := httpInput(httptest.NewRequest("GET", "/records?"+tt.raw, nil))
		var fromURL Query
		if errURL == nil {
			fromURL, errURL = fn.query(in)
		}
		fromEvent, errEvent := fn.parseQueryData([]byte(tt.data))
		if tt.wantField == "" {
			if errURL != nil || errEvent != nil || !reflect.DeepEqual(fromURL, fromEvent) {
				t.Errorf("%q and %s: %+v (%v) and %+v (%v), want the same query", tt.raw, tt.data, fromURL, errURL, fromEvent, errEvent)
			}
			continue
		}
		var eu, ee *fail.Error
		if !errors.As(errURL, &eu) || !errors.As(errEvent, &ee) || eu.Field != tt.wantField || ee.Field != "data."+tt.wantField {
			t.Errorf("%q and %s: %v and %v, want refusals naming %s and data.%s", tt.raw, tt.data, errURL, errEvent, tt.wantField, tt.wantField)
		}
	}
}
