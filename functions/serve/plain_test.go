package serve

import "testing"

// plainObject is a shortcut past checkKeys: whatever it accepts, checkKeys must
// accept too, and it must accept the bodies that clients send.
func TestPlainObjectAgreesWithCheckKeys(t *testing.T) {
	known := []string{"type", "text", "limit"}
	for body, plain := range map[string]bool{
		`{"type":"bp","text":"hello"}`:                             true,
		` { "Type" : "bp" , "text" : "a \"quoted\" {[,]} text" } `: true,
		`{"type":"bp","text":"x","limit":{"a":[1,{"b":"}"}]}}`:     true,
		`{}`:                                    true,
		`{"type":"bp","TYPE":"cmt"}`:            false, // twice, whatever the case
		`{"type":"bp","other":1}`:               false,
		`{"type":"bp"} {"type":"cmt"}`:          false,
		`{"type":"bp",}`:                        false,
		`["type"]`:                              false,
		`{"ty\u0070e":"bp"}`:                    false, // an escaped key: checkKeys decides
		`{"type":"bp","text":"unterminated}`:    false,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}`: false,
	} {
		if got := plainObject([]byte(body), known); got != plain {
			t.Errorf("plainObject(%s) = %v, want %v", body, got, plain)
		}
	}
}

func FuzzPlainObject(f *testing.F) {
	for _, s := range []string{`{"type":"bp","text":"hello"}`, `{"type":{"text":1},"text":"\\"}`, `{"limit":[1,2]}`, `{"a":"b"}`} {
		f.Add(s)
	}
	o := Object{What: "body", Field: "body"}
	known := []string{"type", "text", "limit"}
	f.Fuzz(func(t *testing.T, body string) {
		if plainObject([]byte(body), known) {
			if err := o.checkKeys([]byte(body), known); err != nil {
				t.Fatalf("plainObject accepted %q, which checkKeys refuses: %v", body, err)
			}
		}
	})
}

// BenchmarkObjectDecode is the decoding of a typical create command.
func BenchmarkObjectDecode(b *testing.B) {
	o := Object{What: "body", Field: "body"}
	body := []byte(`{"type":"cmt","text":"lo kavi ne rusa te vi mido fa go hu jike la ma no pequi ro su tave wo xa yo zu an el in or us"}`)
	b.ReportAllocs()
	for b.Loop() {
		var v sample
		if err := o.Decode(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}
